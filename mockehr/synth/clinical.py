"""The condition catalogue and the lab tests it drives: pure data, no logic.

A condition says how it is coded, which drugs treat it, which panels monitor it
and how often it brings the patient back. EFFECTS say how it moves measurements
(labs by LOINC code, vitals by short key) before and after treatment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConditionDef:
    snomed: str
    snomed_display: str
    icd10: str
    icd10_display: str
    name: str                          # plain words, for notes and stories
    chronic: bool = True
    category: str = "problem-list-item"  # or encounter-diagnosis / health-concern
    drugs: tuple[str, ...] = ()         # formulary keys started at diagnosis
    monitoring: tuple[tuple[str, int], ...] = ()   # (panel key, every n days)
    procedures: tuple[tuple[str, int], ...] = ()   # (procedure key, every n days)
    follow_up_days: int | None = None   # how often it brings the patient back
    resolves_after_days: int | None = None  # acute conditions resolve by themselves
    sdoh: bool = False


C = ConditionDef
CONDITIONS: dict[str, ConditionDef] = {
    "hypertension": C("59621000", "Essential hypertension (disorder)", "I10",
                      "Essential (primary) hypertension", "high blood pressure",
                      drugs=("lisinopril",), monitoring=(("bmp", 365),), follow_up_days=180),
    "hyperlipidemia": C("55822004", "Hyperlipidemia (disorder)", "E78.5", "Hyperlipidemia, unspecified",
                        "high cholesterol", drugs=("atorvastatin-20",), monitoring=(("lipid", 365),),
                        follow_up_days=365),
    "t2dm": C("44054006", "Diabetes mellitus type 2 (disorder)", "E11.9",
              "Type 2 diabetes mellitus without complications", "type 2 diabetes",
              drugs=("metformin",), monitoring=(("a1c", 90), ("bmp", 180), ("uacr", 365), ("lipid", 365)),
              follow_up_days=90),
    "t1dm": C("46635009", "Diabetes mellitus type 1 (disorder)", "E10.9",
              "Type 1 diabetes mellitus without complications", "type 1 diabetes",
              drugs=("insulin-70-30",), monitoring=(("a1c", 90), ("bmp", 365), ("uacr", 365)),
              follow_up_days=90),
    "prediabetes": C("714628002", "Prediabetes (finding)", "R73.03", "Prediabetes", "prediabetes",
                     monitoring=(("a1c", 365),), follow_up_days=365),
    "obesity": C("414916001", "Obesity (disorder)", "E66.9", "Obesity, unspecified", "obesity",
                 follow_up_days=365),
    "asthma": C("195967001", "Asthma (disorder)", "J45.909", "Unspecified asthma, uncomplicated", "asthma",
                drugs=("albuterol", "fluticasone"), follow_up_days=180),
    "copd": C("13645005", "Chronic obstructive lung disease (disorder)", "J44.9",
              "Chronic obstructive pulmonary disease, unspecified", "COPD",
              drugs=("albuterol", "fluticasone-salmeterol"), procedures=(("spirometry", 365),),
              follow_up_days=180),
    "ckd3": C("433144002", "Chronic kidney disease stage 3 (disorder)", "N18.30",
              "Chronic kidney disease, stage 3 unspecified", "chronic kidney disease stage 3",
              monitoring=(("bmp", 90), ("uacr", 180), ("cbc", 180)), follow_up_days=90),
    "afib": C("49436004", "Atrial fibrillation (disorder)", "I48.91", "Unspecified atrial fibrillation",
              "atrial fibrillation", drugs=("apixaban", "metoprolol"), procedures=(("ecg", 365),),
              follow_up_days=180),
    "heart-failure": C("88805009", "Chronic congestive heart failure (disorder)", "I50.9",
                       "Heart failure, unspecified", "heart failure", drugs=("furosemide", "metoprolol"),
                       monitoring=(("bmp", 90), ("bnp", 180)), procedures=(("echo", 730),),
                       follow_up_days=90),
    "sick-sinus": C("36083008", "Sick sinus syndrome (disorder)", "I49.5", "Sick sinus syndrome",
                    "sick sinus syndrome", procedures=(("ecg", 365),), follow_up_days=365),
    "cad": C("53741008", "Coronary arteriosclerosis (disorder)", "I25.10",
             "Atherosclerotic heart disease of native coronary artery without angina pectoris",
             "coronary artery disease",
             drugs=("aspirin", "clopidogrel", "atorvastatin-80", "metoprolol", "nitroglycerin"),
             monitoring=(("lipid", 365),), follow_up_days=180),
    "hypothyroidism": C("40930008", "Hypothyroidism (disorder)", "E03.9", "Hypothyroidism, unspecified",
                        "hypothyroidism", drugs=("levothyroxine",), monitoring=(("tsh", 180),),
                        follow_up_days=365),
    "depression": C("35489007", "Depressive disorder (disorder)", "F32.A", "Depression, unspecified",
                    "depression", drugs=("sertraline",), follow_up_days=90),
    "anxiety": C("197480006", "Anxiety disorder (disorder)", "F41.9", "Anxiety disorder, unspecified",
                 "anxiety", follow_up_days=180),
    "osteoporosis": C("64859006", "Osteoporosis (disorder)", "M81.0",
                      "Age-related osteoporosis without current pathological fracture", "osteoporosis",
                      drugs=("alendronate",), follow_up_days=365),
    "osteoarthritis-knee": C("239873007", "Osteoarthritis of knee (disorder)", "M17.11",
                             "Unilateral primary osteoarthritis, right knee", "osteoarthritis of the knee",
                             drugs=("naproxen",), follow_up_days=365),
    "adhd": C("406506008", "Attention deficit hyperactivity disorder (disorder)", "F90.9",
              "Attention-deficit hyperactivity disorder, unspecified type", "ADHD",
              drugs=("methylphenidate",), follow_up_days=180),
    "allergic-rhinitis": C("61582004", "Allergic rhinitis (disorder)", "J30.9", "Allergic rhinitis, unspecified",
                           "hay fever", drugs=("cetirizine",)),
    "migraine": C("37796009", "Migraine (disorder)", "G43.909",
                  "Migraine, unspecified, not intractable, without status migrainosus", "migraine",
                  drugs=("naproxen",)),
    "breast-cancer": C("254837009", "Malignant neoplasm of breast (disorder)", "C50.911",
                       "Malignant neoplasm of unspecified site of right female breast", "breast cancer",
                       drugs=("anastrozole",), procedures=(("mammography", 365),), follow_up_days=180),
    "lung-cancer": C("254637007", "Non-small cell lung cancer (disorder)", "C34.90",
                     "Malignant neoplasm of unspecified part of unspecified bronchus or lung",
                     "lung cancer", monitoring=(("cbc", 90), ("bmp", 90)), follow_up_days=90),
    "pregnancy": C("77386006", "Pregnant (finding)", "Z33.1", "Pregnant state, incidental", "pregnancy",
                   monitoring=(("cbc", 120),), procedures=(("obstetric-ultrasound", 120),),
                   follow_up_days=28),
    "iron-deficiency-anemia": C("87522002", "Iron deficiency anemia (disorder)", "D50.9",
                                "Iron deficiency anemia, unspecified", "iron deficiency anemia",
                                drugs=("ferrous-sulfate",), monitoring=(("cbc", 60),)),
    "tobacco-dependence": C("89765005", "Tobacco dependence syndrome (disorder)", "F17.210",
                            "Nicotine dependence, cigarettes, uncomplicated", "tobacco dependence"),
    "food-insecurity": C("733423003", "Food insecurity (finding)", "Z59.41", "Food insecurity",
                         "food insecurity", category="health-concern", sdoh=True),
    "neonatal-jaundice": C("387712008", "Neonatal jaundice (disorder)", "P59.9", "Neonatal jaundice, unspecified",
                           "newborn jaundice", chronic=False, monitoring=(("bilirubin", 3),),
                           resolves_after_days=10),
    # Acute problems, coded where they were diagnosed (encounter-diagnosis).
    "pneumonia": C("233604007", "Pneumonia (disorder)", "J18.9", "Pneumonia, unspecified organism", "pneumonia",
                   chronic=False, category="encounter-diagnosis", drugs=("ceftriaxone", "azithromycin"),
                   monitoring=(("cbc", 1), ("bmp", 1)), procedures=(("chest-xray", 9999),),
                   resolves_after_days=14),
    "asthma-attack": C("266364000", "Asthma attack (finding)", "J45.901",
                       "Unspecified asthma with (acute) exacerbation", "asthma attack", chronic=False,
                       category="encounter-diagnosis", drugs=("prednisone",), resolves_after_days=7),
    "heart-failure-exacerbation": C("10633002", "Acute congestive heart failure (disorder)", "I50.9",
                                    "Heart failure, unspecified", "worsening heart failure", chronic=False,
                                    category="encounter-diagnosis", monitoring=(("bmp", 1), ("bnp", 2)),
                                    procedures=(("chest-xray", 9999),), resolves_after_days=10),
    "strep-throat": C("43878008", "Streptococcal sore throat (disorder)", "J02.0", "Streptococcal pharyngitis",
                      "strep throat", chronic=False, category="encounter-diagnosis", drugs=("penicillin-v",),
                      resolves_after_days=10),
    "uti": C("68566005", "Urinary tract infectious disease (disorder)", "N39.0",
             "Urinary tract infection, site not specified", "urinary tract infection", chronic=False,
             category="encounter-diagnosis", drugs=("amoxicillin-clavulanate",), resolves_after_days=7),
    "ankle-sprain": C("44465007", "Sprain of ankle (disorder)", "S93.401A",
                      "Sprain of unspecified ligament of right ankle, initial encounter", "sprained ankle",
                      chronic=False, category="encounter-diagnosis", drugs=("naproxen",), resolves_after_days=28),
    "bronchitis": C("10509002", "Acute bronchitis (disorder)", "J20.9", "Acute bronchitis, unspecified",
                    "acute bronchitis", chronic=False, category="encounter-diagnosis", resolves_after_days=21),
    "sinusitis": C("444814009", "Viral sinusitis (disorder)", "J01.90", "Acute sinusitis, unspecified",
                   "sinusitis", chronic=False, category="encounter-diagnosis", resolves_after_days=14),
    "otitis-media": C("65363002", "Otitis media (disorder)", "H66.90", "Otitis media, unspecified, unspecified ear",
                      "ear infection", chronic=False, category="encounter-diagnosis", drugs=("amoxicillin",),
                      resolves_after_days=10),
}


@dataclass(frozen=True)
class LabTest:
    loinc: str
    display: str
    unit: str                    # UCUM code, also shown as the unit
    typical: tuple[float, float]  # (mean, sd) in a healthy adult
    low: float | None = None     # reference range
    high: float | None = None
    decimals: int = 1
    female_typical: tuple[float, float] | None = None
    female_low: float | None = None
    female_high: float | None = None


L = LabTest
LAB_TESTS: dict[str, LabTest] = {t.loinc: t for t in (
    L("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", (7.0, 1.3), 4.5, 11.0),
    L("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", (5.0, 0.3), 4.5, 5.9, 2,
      (4.5, 0.25), 4.1, 5.1),
    L("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", (15.2, 0.7), 13.5, 17.5, 1, (13.6, 0.6), 12.0, 15.5),
    L("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", (45.0, 2.0), 41.0, 53.0, 1,
      (40.0, 2.0), 36.0, 46.0),
    L("787-2", "MCV [Entitic volume] by Automated count", "fL", (89.0, 3.0), 80.0, 100.0),
    L("785-6", "MCH [Entitic mass] by Automated count", "pg", (30.0, 0.6), 27.0, 33.0),
    L("786-4", "MCHC [Mass/volume] by Automated count", "g/dL", (33.8, 0.7), 32.0, 36.0),
    L("788-0", "Erythrocyte distribution width [Ratio] by Automated count", "%", (13.0, 0.5), 11.5, 14.5),
    L("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", (250.0, 45.0), 150.0, 400.0, 0),
    L("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", (88.0, 5.0), 70.0, 99.0, 0),
    L("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", (14.0, 3.0), 7.0, 20.0, 0),
    L("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", (1.0, 0.1), 0.74, 1.35, 2,
      (0.8, 0.09), 0.59, 1.04),
    L("98979-8", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood "
      "by Creatinine-based formula (CKD-EPI 2021)", "mL/min/{1.73_m2}", (95.0, 10.0), 60.0, None, 0),
    L("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", (140.0, 1.8), 136.0, 145.0, 0),
    L("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", (4.2, 0.3), 3.5, 5.1),
    L("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", (102.0, 2.0), 98.0, 107.0, 0),
    L("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", (25.0, 1.5), 22.0, 29.0, 0),
    L("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", (9.5, 0.3), 8.6, 10.3),
    L("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", (180.0, 20.0), None, 200.0, 0),
    L("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", (110.0, 25.0), None, 150.0, 0),
    L("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", (50.0, 6.0), 40.0, None, 0,
      (60.0, 6.0), 50.0, None),
    L("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "mg/dL", (85.0, 9.0),
      None, 100.0, 0),
    L("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", (5.2, 0.2), 4.0, 5.6),
    L("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", (1.8, 0.6), 0.45, 4.5, 2),
    L("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", (1.0, 0.06), 0.8, 1.2),
    L("30934-4", "Natriuretic peptide B [Mass/volume] in Serum or Plasma", "pg/mL", (35.0, 15.0), None, 100.0, 0),
    L("9318-7", "Albumin/Creatinine [Mass Ratio] in Urine", "mg/g", (10.0, 4.0), None, 30.0, 0),
    L("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", (0.7, 0.2), 0.1, 1.2),
    L("1504-0", "Glucose [Mass/volume] in Serum or Plasma --1 hour post 50 g glucose PO", "mg/dL",
      (112.0, 12.0), None, 140.0, 0),
)}

# Newborn bilirubin runs high for everyone; the range a nursery uses on day 2-5.
NEWBORN_BILIRUBIN_RANGE = (1.0, 12.0)


@dataclass(frozen=True)
class Panel:
    loinc: str
    display: str
    tests: tuple[str, ...]
    specimen: str   # key into SPECIMEN_TYPES


PANELS: dict[str, Panel] = {
    "cbc": Panel("58410-2", "CBC panel - Blood by Automated count",
                 ("6690-2", "789-8", "718-7", "4544-3", "787-2", "785-6", "786-4", "788-0", "777-3"), "blood"),
    "bmp": Panel("51990-0", "Basic metabolic panel - Blood",
                 ("2345-7", "3094-0", "2160-0", "98979-8", "2951-2", "2823-3", "2075-0", "2028-9", "17861-6"),
                 "serum"),
    "lipid": Panel("57698-3", "Lipid panel with direct LDL - Serum or Plasma",
                   ("2093-3", "2571-8", "2085-9", "18262-6"), "serum"),
    "a1c": Panel("4548-4", LAB_TESTS["4548-4"].display, ("4548-4",), "blood"),
    "tsh": Panel("3016-3", LAB_TESTS["3016-3"].display, ("3016-3",), "serum"),
    "inr": Panel("6301-6", LAB_TESTS["6301-6"].display, ("6301-6",), "plasma"),
    "bnp": Panel("30934-4", LAB_TESTS["30934-4"].display, ("30934-4",), "serum"),
    "uacr": Panel("9318-7", LAB_TESTS["9318-7"].display, ("9318-7",), "urine"),
    "bilirubin": Panel("1975-2", LAB_TESTS["1975-2"].display, ("1975-2",), "serum"),
    "glucose-challenge": Panel("1504-0", LAB_TESTS["1504-0"].display, ("1504-0",), "serum"),
}

SPECIMEN_TYPES = {
    "blood": ("119297000", "Blood specimen (specimen)"),
    "serum": ("119364003", "Serum specimen (specimen)"),
    "plasma": ("119361006", "Plasma specimen (specimen)"),
    "urine": ("122575003", "Urine specimen (specimen)"),
}

# Adults get these at check-ups whatever their problems, if not done recently.
SCREENING_PANELS = (("bmp", 365), ("cbc", 365 * 2), ("lipid", 365 * 3))


@dataclass(frozen=True)
class Effect:
    """How a condition moves a measurement: mean/sd untreated, and once treated
    (reached over ramp_days after treatment starts); treated None: no treatment effect."""
    mean: float
    sd: float
    treated_mean: float | None = None
    treated_sd: float | None = None
    ramp_days: int = 90


E = Effect
# Measurement keys: LOINC codes for labs; sbp, dbp, hr, rr, temp, spo2 for vitals.
EFFECTS: dict[str, dict[str, Effect]] = {
    "t2dm": {"4548-4": E(8.6, 0.5, 7.1, 0.35, 180), "2345-7": E(180, 22, 132, 12, 180)},
    "t1dm": {"4548-4": E(9.4, 0.5, 7.6, 0.4, 180), "2345-7": E(215, 35, 155, 25, 180)},
    "prediabetes": {"4548-4": E(6.0, 0.15), "2345-7": E(108, 5)},
    "hyperlipidemia": {"18262-6": E(168, 12, 96, 9, 120), "2571-8": E(215, 30, 150, 20, 120),
                       "2085-9": E(41, 4)},
    "cad": {"18262-6": E(150, 12, 68, 8, 120), "2571-8": E(190, 25, 130, 18, 120), "2085-9": E(40, 4)},
    "hypertension": {"sbp": E(154, 7, 131, 6, 150), "dbp": E(96, 5, 81, 4, 150)},
    "ckd3": {"2160-0": E(1.75, 0.12), "3094-0": E(31, 4), "2823-3": E(4.9, 0.2), "9318-7": E(95, 25),
             "718-7": E(11.8, 0.5)},
    "heart-failure": {"30934-4": E(640, 110, 260, 50, 120), "spo2": E(95, 1)},
    "heart-failure-exacerbation": {"30934-4": E(1450, 200, 700, 120, 5), "spo2": E(90, 1.5, 95, 1, 4),
                                   "rr": E(24, 2, 18, 1.5, 4), "hr": E(102, 6, 80, 5, 4),
                                   "2951-2": E(133, 1.5, 137, 1.5, 4)},
    "afib": {"hr": E(108, 10, 76, 6, 30)},
    "copd": {"spo2": E(92, 1.2), "rr": E(19, 1.5)},
    "hypothyroidism": {"3016-3": E(9.5, 1.5, 2.3, 0.6, 90)},
    "pneumonia": {"temp": E(38.8, 0.3, 37.0, 0.2, 4), "hr": E(108, 6, 84, 5, 4), "rr": E(24, 2, 17, 1.5, 4),
                  "spo2": E(90, 1.2, 95, 1.0, 4), "6690-2": E(16.5, 1.5, 9.0, 1.0, 4)},
    "asthma-attack": {"spo2": E(92, 1.0, 97, 1.0, 2), "rr": E(30, 3, 22, 2, 2), "hr": E(128, 8, 98, 6, 2)},
    "strep-throat": {"temp": E(38.6, 0.3)},
    "uti": {"temp": E(37.6, 0.3)},
    "iron-deficiency-anemia": {"718-7": E(10.3, 0.3, 11.9, 0.3, 90), "785-6": E(24.5, 0.8, 28.5, 0.6, 90)},
    "pregnancy": {"hr": E(86, 5), "sbp": E(110, 6), "dbp": E(68, 5)},
    "neonatal-jaundice": {"1975-2": E(13.2, 0.9, 6.5, 0.8, 6)},
    "lung-cancer": {"718-7": E(11.2, 0.5), "spo2": E(93, 1.2)},
}

# Drugs that move labs on their own, and the panels that watch them.
DRUG_EFFECTS: dict[str, dict[str, Effect]] = {"warfarin": {"6301-6": E(2.6, 0.35)}}
DRUG_MONITORING: dict[str, tuple[tuple[str, int], ...]] = {"warfarin": (("inr", 28),)}
