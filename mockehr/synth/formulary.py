"""Drugs, vaccines, allergens, procedures and implants: pure data, no logic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Drug:
    rxnorm: str
    display: str                  # the RxNorm name
    sig: str                      # the dosage text a pharmacist prints
    dose: tuple[float, str, str]  # (value, unit shown, UCUM code)
    timing: tuple[int, float, str] = (1, 1, "d")  # (frequency, period, period unit)
    route: str = "oral"
    as_needed: bool = False
    days_supply: int = 90
    quantity: tuple[float, str, str] = (90, "tablet", "{tbl}")
    course_days: int | None = None  # a fixed course; None: taken until stopped
    refills: int = 3


TAB = ("tablet", "{tbl}")


def tablets(n: float) -> tuple[float, str, str]:
    return (n, *TAB)


D = Drug
DRUGS: dict[str, Drug] = {
    "metformin": D("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
                   "Take 1 tablet by mouth once daily with the evening meal", tablets(1)),
    "lisinopril": D("314076", "lisinopril 10 MG Oral Tablet", "Take 1 tablet by mouth once daily", tablets(1)),
    "amlodipine": D("197361", "amlodipine 5 MG Oral Tablet", "Take 1 tablet by mouth once daily", tablets(1)),
    "hydrochlorothiazide": D("310798", "hydrochlorothiazide 25 MG Oral Tablet",
                             "Take 1 tablet by mouth every morning", tablets(1)),
    "atorvastatin-20": D("617310", "atorvastatin 20 MG Oral Tablet",
                         "Take 1 tablet by mouth once daily at bedtime", tablets(1)),
    "atorvastatin-80": D("259255", "atorvastatin 80 MG Oral Tablet",
                         "Take 1 tablet by mouth once daily at bedtime", tablets(1)),
    "albuterol": D("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
                   "Inhale 2 puffs by mouth every 4 to 6 hours as needed for wheezing or shortness of breath",
                   (2, "puff", "{puff}"), (1, 4, "h"), "inhalation", as_needed=True, days_supply=30,
                   quantity=(1, "inhaler", "{inhaler}"), refills=2),
    "fluticasone": D("895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
                     "Inhale 2 puffs by mouth twice daily; rinse mouth after use", (2, "puff", "{puff}"),
                     (2, 1, "d"), "inhalation", days_supply=30, quantity=(1, "inhaler", "{inhaler}"), refills=5),
    "fluticasone-salmeterol": D("896209", "60 ACTUAT fluticasone propionate 0.25 MG/ACTUAT / salmeterol "
                                "0.05 MG/ACTUAT Dry Powder Inhaler", "Inhale 1 puff by mouth twice daily",
                                (1, "puff", "{puff}"), (2, 1, "d"), "inhalation", days_supply=30,
                                quantity=(1, "inhaler", "{inhaler}"), refills=5),
    "warfarin": D("855332", "warfarin sodium 5 MG Oral Tablet",
                  "Take 1 tablet by mouth every evening, or as directed by the anticoagulation clinic", tablets(1)),
    "apixaban": D("1364430", "apixaban 5 MG Oral Tablet", "Take 1 tablet by mouth twice daily", tablets(1),
                  (2, 1, "d"), quantity=(180, *TAB)),
    "metoprolol": D("866427", "24 HR metoprolol succinate 25 MG Extended Release Oral Tablet",
                    "Take 1 tablet by mouth once daily", tablets(1)),
    "furosemide": D("313988", "furosemide 40 MG Oral Tablet", "Take 1 tablet by mouth every morning", tablets(1)),
    "aspirin": D("243670", "aspirin 81 MG Oral Tablet", "Take 1 tablet by mouth once daily", tablets(1)),
    "clopidogrel": D("309362", "clopidogrel 75 MG Oral Tablet", "Take 1 tablet by mouth once daily", tablets(1)),
    "nitroglycerin": D("705129", "nitroglycerin 0.4 MG/ACTUAT Mucosal Spray",
                       "Spray 1 dose under the tongue every 5 minutes as needed for chest pain, up to 3 doses",
                       (1, "spray", "{spray}"), (1, 5, "min"), "sublingual", as_needed=True, days_supply=90,
                       quantity=(1, "bottle", "{bottle}"), refills=1),
    "insulin-70-30": D("106892", "insulin isophane, human 70 UNT/ML / insulin, regular, human 30 UNT/ML "
                       "Injectable Suspension [Humulin]",
                       "Inject 18 units under the skin twice daily, 30 minutes before breakfast and dinner",
                       (18, "unit", "[IU]"), (2, 1, "d"), "subcutaneous", days_supply=30,
                       quantity=(20, "mL", "mL"), refills=5),
    "levothyroxine": D("966222", "levothyroxine sodium 0.05 MG Oral Tablet",
                       "Take 1 tablet by mouth once daily on an empty stomach", tablets(1)),
    "sertraline": D("312940", "sertraline 50 MG Oral Tablet", "Take 1 tablet by mouth once daily", tablets(1)),
    "alendronate": D("904419", "alendronic acid 10 MG Oral Tablet",
                     "Take 1 tablet by mouth every morning with a full glass of water; stay upright for 30 minutes",
                     tablets(1)),
    "naproxen": D("849574", "naproxen sodium 220 MG Oral Tablet",
                  "Take 1 tablet by mouth every 12 hours as needed for pain, with food", tablets(1), (1, 12, "h"),
                  as_needed=True, days_supply=30, quantity=(30, *TAB), refills=0),
    "methylphenidate": D("1091392", "methylphenidate hydrochloride 20 MG Oral Tablet",
                         "Take 1 tablet by mouth every morning", tablets(1), days_supply=30,
                         quantity=(30, *TAB), refills=0),
    "cetirizine": D("1014676", "cetirizine hydrochloride 5 MG Oral Tablet",
                    "Take 2 tablets by mouth once daily as needed for allergy symptoms", tablets(2),
                    as_needed=True, quantity=(180, *TAB)),
    "anastrozole": D("199224", "anastrozole 1 MG Oral Tablet", "Take 1 tablet by mouth once daily", tablets(1)),
    "ferrous-sulfate": D("310325", "ferrous sulfate 325 MG Oral Tablet",
                         "Take 1 tablet by mouth once daily with orange juice", tablets(1)),
    "prednisone": D("312615", "predniSONE 20 MG Oral Tablet", "Take 1 tablet by mouth once daily for 5 days",
                    tablets(1), days_supply=5, quantity=(5, *TAB), course_days=5, refills=0),
    "ceftriaxone": D("1665021", "ceftriaxone 1000 MG Injection", "1 g intravenously every 24 hours",
                     (1, "g", "g"), route="intravenous", days_supply=5, quantity=(5, "vial", "{vial}"),
                     course_days=5, refills=0),
    "azithromycin": D("141918", "azithromycin 250 MG Oral Tablet",
                      "Take 2 tablets by mouth on day 1, then 1 tablet once daily on days 2 to 5", tablets(1),
                      days_supply=5, quantity=(6, *TAB), course_days=5, refills=0),
    "penicillin-v": D("834061", "penicillin V potassium 500 MG Oral Tablet",
                      "Take 1 tablet by mouth twice daily for 10 days", tablets(1), (2, 1, "d"), days_supply=10,
                      quantity=(20, *TAB), course_days=10, refills=0),
    "amoxicillin": D("308192", "amoxicillin 500 MG Oral Tablet", "Take 1 tablet by mouth twice daily for 10 days",
                     tablets(1), (2, 1, "d"), days_supply=10, quantity=(20, *TAB), course_days=10, refills=0),
    "amoxicillin-clavulanate": D("562251", "amoxicillin 250 MG / clavulanate 125 MG Oral Tablet",
                                 "Take 1 tablet by mouth every 8 hours for 7 days", tablets(1), (3, 1, "d"),
                                 days_supply=7, quantity=(21, *TAB), course_days=7, refills=0),
    "acetaminophen": D("313782", "acetaminophen 325 MG Oral Tablet",
                       "Take 2 tablets by mouth every 6 hours as needed for pain", tablets(2), (1, 6, "h"),
                       as_needed=True, days_supply=30, quantity=(100, *TAB), refills=0),
    "oxycodone-acetaminophen": D("1049221", "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet",
                                 "Take 1 tablet by mouth every 6 hours as needed for severe pain", tablets(1),
                                 (1, 6, "h"), as_needed=True, days_supply=5, quantity=(20, *TAB),
                                 course_days=7, refills=0),
    "epinephrine": D("1870230", "NDA020800 0.3 ML epinephrine 1 MG/ML Auto-Injector",
                     "Inject into the outer thigh once as needed for anaphylaxis; call 911", (0.3, "mL", "mL"),
                     (1, 1, "d"), "intramuscular", as_needed=True, days_supply=365,
                     quantity=(2, "auto-injector", "{auto-injector}"), refills=1),
}

ROUTES = {
    "oral": ("26643006", "Oral route (qualifier value)"),
    "inhalation": ("447694001", "Respiratory tract route (qualifier value)"),
    "subcutaneous": ("34206005", "Subcutaneous route (qualifier value)"),
    "intravenous": ("47625008", "Intravenous route (qualifier value)"),
    "intramuscular": ("78421000", "Intramuscular route (qualifier value)"),
    "sublingual": ("37839007", "Sublingual route (qualifier value)"),
}


@dataclass(frozen=True)
class Vaccine:
    cvx: str
    display: str
    route: str = "IM"   # v3-RouteOfAdministration
    dose_ml: float = 0.5


V = Vaccine
VACCINES: dict[str, Vaccine] = {
    "hepb": V("08", "Hep B, adolescent or pediatric"),
    "rotavirus": V("116", "rotavirus, pentavalent", "PO", 2.0),
    "dtap": V("20", "DTaP"),
    "hib": V("49", "Hib (PRP-OMP)"),
    "pcv13": V("133", "Pneumococcal conjugate PCV 13"),
    "ipv": V("10", "IPV", "SQ"),
    "mmr": V("03", "MMR", "SQ"),
    "varicella": V("21", "varicella", "SQ"),
    "hepa": V("83", "Hep A, ped/adol, 2 dose"),
    "tdap": V("115", "Tdap"),
    "hpv": V("165", "HPV9"),
    "menacwy": V("114", "meningococcal MCV4P"),
    "flu": V("140", "Influenza, seasonal, injectable, preservative free"),
    "zoster": V("187", "zoster recombinant"),
    "ppsv23": V("33", "pneumococcal polysaccharide PPV23"),
}
VACCINE_ROUTES = {"IM": "Injection, intramuscular", "SQ": "Injection, subcutaneous", "PO": "Swallow, oral"}

# The CDC childhood schedule, simplified: (vaccine, age in days when due).
CHILD_SCHEDULE: tuple[tuple[str, int], ...] = (
    ("hepb", 0), ("hepb", 30),
    ("rotavirus", 61), ("dtap", 61), ("hib", 61), ("pcv13", 61), ("ipv", 61),
    ("rotavirus", 122), ("dtap", 122), ("hib", 122), ("pcv13", 122), ("ipv", 122),
    ("rotavirus", 183), ("dtap", 183), ("pcv13", 183), ("hepb", 183), ("ipv", 183),
    ("mmr", 365), ("varicella", 365), ("hepa", 365), ("hib", 365), ("pcv13", 365),
    ("dtap", 456), ("hepa", 548),
    ("dtap", 1461), ("ipv", 1461), ("mmr", 1461), ("varicella", 1461),
    ("tdap", 4018), ("hpv", 4018), ("menacwy", 4018), ("hpv", 4200), ("menacwy", 5844),
)


@dataclass(frozen=True)
class Allergen:
    system: str    # "rxnorm" or "snomed"
    code: str
    display: str
    category: str  # medication | food | environment
    reaction: str  # key into REACTIONS
    criticality: str = "low"
    severity: str = "mild"
    kind: str = "allergy"  # or intolerance


A = Allergen
ALLERGENS: dict[str, Allergen] = {
    "penicillin": A("rxnorm", "7980", "penicillin G", "medication", "hives", "high", "moderate"),
    "sulfa": A("rxnorm", "10180", "sulfamethoxazole", "medication", "rash"),
    "codeine": A("rxnorm", "2670", "codeine", "medication", "nausea", kind="intolerance"),
    "aspirin": A("rxnorm", "1191", "aspirin", "medication", "wheezing", "high", "moderate"),
    "peanut": A("snomed", "762952008", "Peanut (substance)", "food", "anaphylaxis", "high", "severe"),
    "shellfish": A("snomed", "735029006", "Shellfish (substance)", "food", "angioedema", "high", "moderate"),
    "egg": A("snomed", "102263004", "Eggs (edible) (substance)", "food", "hives"),
    "latex": A("snomed", "111088007", "Latex (substance)", "environment", "rash"),
    "bee-venom": A("snomed", "288328004", "Bee venom (substance)", "environment", "anaphylaxis", "high", "severe"),
    "cat-dander": A("snomed", "260152009", "Cat dander (substance)", "environment", "sneezing"),
    "grass-pollen": A("snomed", "256277009", "Grass pollen (substance)", "environment", "sneezing"),
}
NO_KNOWN_ALLERGY = ("716186003", "No known allergy (situation)")
REACTIONS = {
    "hives": ("247472004", "Wheal (finding)"),
    "anaphylaxis": ("39579001", "Anaphylaxis (disorder)"),
    "rash": ("271807003", "Eruption of skin (disorder)"),
    "nausea": ("422587007", "Nausea (finding)"),
    "angioedema": ("41291007", "Angioedema (disorder)"),
    "wheezing": ("56018004", "Wheezing (finding)"),
    "sneezing": ("76067001", "Sneezing (finding)"),
}


@dataclass(frozen=True)
class ProcedureDef:
    snomed: str
    display: str
    device: str | None = None   # an implant left behind (key into DEVICES)
    setting: str = "clinic"     # clinic | hospital


P = ProcedureDef
PROCEDURES: dict[str, ProcedureDef] = {
    "colonoscopy": P("73761001", "Colonoscopy (procedure)", setting="hospital"),
    "mammography": P("71651007", "Mammography (procedure)"),
    "spirometry": P("127783003", "Spirometry (procedure)"),
    "echo": P("40701008", "Echocardiography (procedure)"),
    "ecg": P("29303009", "Electrocardiographic procedure (procedure)"),
    "obstetric-ultrasound": P("268445003", "Ultrasound scan - obstetric (procedure)"),
    "pacemaker-implant": P("307280005", "Implantation of cardiac pacemaker (procedure)", "pacemaker", "hospital"),
    "knee-replacement": P("609588000", "Total knee replacement (procedure)", setting="hospital"),
    "pci": P("415070008", "Percutaneous coronary intervention (procedure)", "coronary-stent", "hospital"),
    "lumpectomy": P("392021009", "Lumpectomy of breast (procedure)", setting="hospital"),
    "chest-xray": P("399208008", "Plain chest X-ray (procedure)"),
    "medication-reconciliation": P("430193006", "Medication reconciliation (procedure)"),
    "depression-screening": P("171207006", "Depression screening (procedure)"),
}


@dataclass(frozen=True)
class DeviceDef:
    snomed: str
    display: str
    manufacturer: str
    model: str
    gtin: str          # 13 digits; the 14th is a GS1 check digit
    years_valid: int


DEVICES: dict[str, DeviceDef] = {
    "pacemaker": DeviceDef("14106009", "Cardiac pacemaker, device (physical object)", "Northfield Cardiac Inc.",
                           "NC-PM220 DR", "0088442100012", 12),
    "coronary-stent": DeviceDef("705643001", "Coronary artery stent (physical object)", "Northfield Vascular Inc.",
                                "NV-DES 3.0x18", "0088442200019", 30),
}
