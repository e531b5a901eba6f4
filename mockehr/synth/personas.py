"""The designed patients: who they are and what happened to them, as data.

Times are days before the dataset's anchor date (see codes.years). The first
persona is what a standalone launch lands on, so it is an ordinary adult with
a rich record. Names, addresses and numbers come from the seed; the clinical
story does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from mockehr.synth.codes import years as Y


@dataclass(frozen=True)
class Dx:
    """A diagnosis: which condition, when it began and where it was made."""
    condition: str
    onset: int                   # days before the anchor
    setting: str = "clinic"      # clinic | emergency | inpatient (where it was diagnosed)
    stay_days: int | None = 0    # inpatient length of stay; None: still in hospital
    status: str | None = None    # clinicalStatus when not the natural one (remission, inactive)
    verification: str = "confirmed"


@dataclass(frozen=True)
class Event:
    """An encounter that is not a new diagnosis: a birth or a planned procedure."""
    when: int                    # days before the anchor
    setting: str = "clinic"      # clinic | hospital | inpatient | birth | emergency
    procedure: str | None = None
    reason: str | None = None    # condition key
    stay_days: int = 0


@dataclass(frozen=True)
class MedStep:
    """A drug started outside the condition catalogue's defaults."""
    drug: str
    start: int                   # days before the anchor
    reason: str | None = None
    stop: int | None = None


@dataclass(frozen=True)
class Persona:
    slug: str
    gender: str                  # administrative gender: female | male | other
    age_days: int
    story: str
    good_for: tuple[str, ...]
    diagnoses: tuple[Dx, ...] = ()
    events: tuple[Event, ...] = ()
    extra_drugs: tuple[MedStep, ...] = ()
    drug_swaps: tuple[tuple[str, str], ...] = ()   # (catalogue drug, the one this patient takes)
    poorly_controlled: tuple[str, ...] = ()        # conditions treatment only half fixes
    allergies: tuple[str, ...] = ()                # ALLERGENS keys; "nka" records none known
    history_days: int = Y(3)                       # how far back the record goes
    visit_every_days: int | None = None
    race: str = "white"
    race_detail: tuple[str, str] | None = None     # OMB detailed code, display
    ethnicity: str = "not-hispanic"
    ethnicity_detail: tuple[str, str] | None = None
    language: str = "en"
    interpreter: bool = False
    name_locale: str = "en_US"
    birth_sex: str | None = None                   # F | M when it differs from gender or must be stated
    smoking: str | None = "never"                  # never | former | current | None (not asked)
    coverage: str | None = "commercial"            # commercial | medicare | medicaid | None
    pcp: str | None = None                         # practitioner key; None: chosen by age
    died: int | None = None                        # days before the anchor
    medication_style: str = "codeable"             # or "reference" (Medication resources)
    extra_labs: tuple[tuple[str, int], ...] = ()   # (panel, days before the anchor)
    features: tuple[str, ...] = ()


# What Persona.features may switch on, beyond what the diagnoses imply.
FEATURES = (
    "two-names",           # married, maiden and nick names
    "many-identifiers",    # old MRN, SSN, driver's license, work phone
    "parents",             # mother and father as RelatedPersons (and coverage through them)
    "contact",             # an emergency contact on the Patient
    "dispenses",           # pharmacy fills of long-term drugs
    "phq9",                # a PHQ-9 at every visit for depression
    "sdoh",                # Hunger Vital Sign screening at the food-insecurity visit
    "gender-identity",     # the US Core genderIdentity extension
    "sexual-orientation",  # a sexual orientation observation
    "flu-declined",        # the first flu shot offered is refused
    "minimal",             # nothing but demographics and encounters
)

PERSONAS: tuple[Persona, ...] = (
    Persona(
        "diabetes-htn", "male", Y(56),
        "Type 2 diabetes (diagnosed 3 years ago), hypertension, high cholesterol and obesity; quarterly "
        "visits with HbA1c coming down on metformin; former smoker, penicillin allergy.",
        ("default standalone launch patient", "diabetes and HbA1c trends", "medication lists and dispenses",
         "labs grouped in DiagnosticReports"),
        diagnoses=(Dx("hypertension", Y(9)), Dx("obesity", Y(6)), Dx("hyperlipidemia", Y(7)),
                   Dx("t2dm", Y(3.2))),
        events=(Event(Y(4.1), "hospital", "colonoscopy"),),
        allergies=("penicillin",), history_days=Y(3.6), smoking="former", pcp="okafor",
        features=("dispenses", "contact"),
    ),
    Persona(
        "newborn", "female", 12,
        "12-day-old girl born at term at Riverside General; newborn jaundice that resolved; parents "
        "recorded as RelatedPersons and her coverage is through her mother.",
        ("age under 1 year (days/weeks display)", "newborn vitals, head circumference, weight-for-length",
         "RelatedPerson parents and dependent Coverage"),
        diagnoses=(Dx("neonatal-jaundice", 9),),
        events=(Event(12, "birth", stay_days=2),),
        race="black", smoking=None, coverage="medicaid", pcp="lindqvist", features=("parents",),
    ),
    Persona(
        "child-asthma", "male", Y(7),
        "7-year-old boy with asthma on albuterol and fluticasone, and a peanut allergy; ED visit for an "
        "asthma attack this winter; childhood immunizations up to date.",
        ("pediatric growth and BMI percentile", "full childhood immunization history",
         "emergency visits", "high-criticality food allergy"),
        diagnoses=(Dx("otitis-media", Y(5.5)), Dx("asthma", Y(3)), Dx("asthma-attack", 140, "emergency")),
        extra_drugs=(MedStep("epinephrine", Y(4)),),
        allergies=("peanut",), history_days=Y(8), ethnicity="hispanic", ethnicity_detail=("2180-8", "Puerto Rican"),
        smoking=None, pcp="lindqvist", features=("parents",),
    ),
    Persona(
        "octogenarian", "female", Y(87),
        "87-year-old woman with atrial fibrillation on apixaban, heart failure, a pacemaker for sick sinus "
        "syndrome, CKD stage 3, osteoporosis and hypertension; admitted last year for worsening heart failure.",
        ("age 80+", "polypharmacy; medications as Medication references", "implantable Device with UDI",
         "CKD labs (creatinine, eGFR)", "inpatient history"),
        diagnoses=(Dx("hypertension", Y(30)), Dx("osteoporosis", Y(8)), Dx("ckd3", Y(5)), Dx("afib", Y(6)),
                   Dx("heart-failure", Y(4)), Dx("sick-sinus", Y(2.2)),
                   Dx("heart-failure-exacerbation", 262, "inpatient", stay_days=4)),
        events=(Event(Y(2.1), "inpatient", "pacemaker-implant", "sick-sinus", stay_days=1),),
        allergies=("sulfa",), history_days=Y(2.3), smoking="former", coverage="medicare", pcp="okafor",
        medication_style="reference", features=("contact", "dispenses"),
    ),
    Persona(
        "deceased", "male", Y(80),
        "Man with COPD, hypertension and lung cancer who died in hospital of pneumonia about six months "
        "ago: deceasedDateTime set, discharge disposition 'expired', medications stopped.",
        ("deceased patients (deceasedDateTime)", "discharge disposition 'expired'", "stopped medications"),
        diagnoses=(Dx("hypertension", Y(15)), Dx("copd", Y(10)), Dx("lung-cancer", Y(1.3)),
                   Dx("pneumonia", 204, "inpatient", stay_days=4)),
        allergies=("nka",), history_days=Y(2.5), smoking="former", coverage="medicare", pcp="okafor",
        died=200,
    ),
    Persona(
        "two-names", "female", Y(41),
        "Woman with hypothyroidism and migraines, recorded under her married and maiden names and a "
        "nickname, with MRN, old MRN, SSN and driver's license, three phones and a past address.",
        ("name display and patient matching (official/maiden/nickname)",
         "identifier handling (MRN, old MRN, SSN, driver's license)", "multiple telecoms and addresses"),
        diagnoses=(Dx("migraine", Y(10)), Dx("hypothyroidism", Y(2.5))),
        allergies=("codeine",), history_days=Y(4), pcp="morgan",
        features=("two-names", "many-identifiers"),
    ),
    Persona(
        "spanish", "female", Y(63),
        "Spanish-speaking woman who needs an interpreter, with poorly controlled type 2 diabetes, obesity "
        "and high cholesterol.",
        ("preferred language and interpreterRequired", "Hispanic/Latino ethnicity with detailed codes",
         "out-of-range HbA1c flags"),
        diagnoses=(Dx("obesity", Y(10)), Dx("t2dm", Y(8)), Dx("hyperlipidemia", Y(5))),
        poorly_controlled=("t2dm",), allergies=("nka",), history_days=Y(2.5), ethnicity="hispanic",
        ethnicity_detail=("2148-5", "Mexican"), language="es", interpreter=True, name_locale="es_MX",
        coverage="medicaid", pcp="morgan", features=("dispenses",),
    ),
    Persona(
        "many-observations", "male", Y(71),
        "Diabetes, CKD stage 3, hypertension and atrial fibrillation on warfarin; seen every ten weeks for "
        "over three years, so he has hundreds of observations (INR, labs, vitals).",
        ("paging (_count, next links) over hundreds of Observations", "lab trends (INR, eGFR, HbA1c)",
         "apps' performance on a large record"),
        diagnoses=(Dx("hypertension", Y(20)), Dx("hyperlipidemia", Y(12)), Dx("t2dm", Y(12)), Dx("ckd3", Y(6)),
                   Dx("afib", Y(5))),
        drug_swaps=(("apixaban", "warfarin"),), allergies=("aspirin",), history_days=Y(3.25),
        visit_every_days=70, race="black", smoking="former", coverage="medicare", pcp="johnson",
        features=("dispenses",),
    ),
    Persona(
        "minimal", "male", Y(33),
        "Almost nothing on file: demographics and a single emergency department visit.",
        ("empty states: no conditions, medications or observations", "apps that must cope with sparse records"),
        events=(Event(410, "emergency"),),
        race="unknown", ethnicity="unknown", smoking=None, coverage=None, features=("minimal",),
    ),
    Persona(
        "type1", "female", Y(24),
        "Type 1 diabetes since childhood, on twice-daily insulin; HbA1c every three months; anxiety.",
        ("diabetes treated with insulin, not metformin", "young adult", "HbA1c trends"),
        diagnoses=(Dx("t1dm", Y(15)), Dx("anxiety", Y(2))),
        allergies=("nka",), history_days=Y(2.5), race="asian", race_detail=("2029-7", "Asian Indian"), pcp="morgan",
    ),
    Persona(
        "hypertension", "male", Y(47),
        "Current smoker diagnosed with hypertension two years ago: lisinopril, then amlodipine added; blood "
        "pressure coming down.",
        ("blood pressure charts (BP panel components)", "smoking status: current smoker",
         "medication changes over time"),
        diagnoses=(Dx("tobacco-dependence", Y(25)), Dx("hypertension", Y(2.2))),
        extra_drugs=(MedStep("amlodipine", Y(1.6), "hypertension"),),
        allergies=("nka",), race="black", smoking="current", pcp="okafor",
    ),
    Persona(
        "pregnant", "female", Y(29),
        "26 weeks pregnant with her second child: monthly prenatal visits, iron-deficiency anemia on ferrous "
        "sulfate, a 1-hour glucose screen.",
        ("pregnancy status observation", "prenatal encounters", "low hemoglobin flags"),
        diagnoses=(Dx("pregnancy", 126), Dx("iron-deficiency-anemia", 62)),
        allergies=("latex",), ethnicity="hispanic", ethnicity_detail=("2182-4", "Cuban"), coverage="medicaid",
        pcp="patel", extra_labs=(("glucose-challenge", 12),),
    ),
    Persona(
        "depression", "male", Y(34),
        "Treated for depression and anxiety since last summer; a PHQ-9 at every visit shows improvement on "
        "sertraline.",
        ("QuestionnaireResponse (PHQ-9) and screening observations", "behavioral health apps", "score trends"),
        diagnoses=(Dx("anxiety", Y(2)), Dx("depression", 330)),
        allergies=("nka",), race="asian", history_days=Y(2), pcp="johnson", features=("phq9",),
    ),
    Persona(
        "teen", "male", Y(15),
        "15-year-old with ADHD on methylphenidate who sprained his ankle playing soccer; adolescent vaccines "
        "(Tdap, HPV, MenACWY).",
        ("adolescent patient (access rules for 13-17)", "RelatedPerson parent", "resolved encounter-diagnosis"),
        diagnoses=(Dx("adhd", Y(6)), Dx("ankle-sprain", 75, "emergency")),
        allergies=("grass-pollen",), history_days=Y(4.5), smoking="never", pcp="lindqvist", features=("parents",),
    ),
    Persona(
        "copd", "female", Y(64),
        "COPD and she still smokes: yearly spirometry, low oxygen saturation, an episode of acute bronchitis; "
        "high cholesterol.",
        ("smoking status: current smoker", "SpO2 and respiratory charts", "procedures (spirometry)"),
        diagnoses=(Dx("tobacco-dependence", Y(45)), Dx("copd", Y(7)), Dx("hyperlipidemia", Y(5)),
                   Dx("bronchitis", 400)),
        allergies=("nka",), race="aian", smoking="current", pcp="morgan",
    ),
    Persona(
        "allergies", "female", Y(35),
        "Seven allergies and intolerances (penicillin, sulfa, peanut, shellfish, latex, bee venom; codeine "
        "intolerance) and hay fever; carries an epinephrine auto-injector.",
        ("allergy checking and CDS Hooks", "allergy categories, criticality and reactions",
         "intolerance vs allergy"),
        diagnoses=(Dx("allergic-rhinitis", Y(12)),),
        extra_drugs=(MedStep("epinephrine", Y(6)),),
        allergies=("penicillin", "sulfa", "peanut", "shellfish", "latex", "bee-venom", "codeine"),
        race="nhpi", pcp="morgan",
    ),
    Persona(
        "knee-replacement", "male", Y(68),
        "Right total knee replacement four months ago (two-day admission) for osteoarthritis; a short opioid "
        "course, now acetaminophen; high cholesterol.",
        ("surgical procedures and inpatient stays", "completed short-course medications", "Medicare coverage"),
        diagnoses=(Dx("hyperlipidemia", Y(9)), Dx("osteoarthritis-knee", Y(6))),
        events=(Event(121, "inpatient", "knee-replacement", "osteoarthritis-knee", stay_days=2),),
        extra_drugs=(MedStep("oxycodone-acetaminophen", 119, "osteoarthritis-knee", stop=112),
                     MedStep("acetaminophen", 119, "osteoarthritis-knee")),
        allergies=("penicillin",), smoking="former", coverage="medicare", pcp="okafor",
    ),
    Persona(
        "sdoh", "female", Y(52),
        "Prediabetes, obesity and hypertension; screened positive for food insecurity (Hunger Vital Sign) and "
        "was referred to a community food program.",
        ("SDOH screening QuestionnaireResponse and observations", "health-concern Conditions",
         "referral ServiceRequest and SDOH Goal"),
        diagnoses=(Dx("obesity", Y(5)), Dx("hypertension", Y(3)), Dx("prediabetes", Y(2)),
                   Dx("food-insecurity", 100)),
        allergies=("nka",), race="black", coverage="medicaid", pcp="johnson", features=("sdoh",),
    ),
    Persona(
        "inpatient", "male", Y(74),
        "Admitted three days ago with community-acquired pneumonia and still in hospital: in-progress "
        "inpatient encounter, IV ceftriaxone, daily labs and vitals.",
        ("EHR launch with an encounter in context (in-progress Encounter)", "inpatient medication orders",
         "daily lab trends (WBC falling)"),
        diagnoses=(Dx("hypertension", Y(12)), Dx("hyperlipidemia", Y(10)),
                   Dx("pneumonia", 3, "inpatient", stay_days=None)),
        allergies=("penicillin",), smoking="former", coverage="medicare", pcp="okafor",
    ),
    Persona(
        "cancer-survivor", "female", Y(58),
        "Breast cancer in remission after a lumpectomy four years ago; on anastrozole with yearly "
        "mammograms; osteoporosis.",
        ("clinicalStatus 'remission'", "oncology history and surveillance procedures"),
        diagnoses=(Dx("breast-cancer", Y(4.1), status="remission"), Dx("osteoporosis", Y(1.5))),
        events=(Event(Y(4), "hospital", "lumpectomy", "breast-cancer"),),
        allergies=("sulfa",), history_days=Y(4.3), pcp="morgan",
    ),
    Persona(
        "nonbinary", "other", Y(30),
        "Nonbinary adult (administrative gender 'other', birth sex female) with migraines and anxiety; legal "
        "and chosen names; two races recorded.",
        ("gender 'other' and the genderIdentity extension", "sexual orientation observation",
         "multiple race categories", "usual vs official name"),
        diagnoses=(Dx("migraine", Y(8)), Dx("anxiety", Y(4))),
        allergies=("cat-dander",), race="multiple", birth_sex="F", pcp="johnson",
        features=("gender-identity", "sexual-orientation"),
    ),
    Persona(
        "cad-stent", "male", Y(66),
        "Coronary artery disease: a stent was placed (PCI) during an admission for chest pain two years ago; "
        "dual antiplatelet therapy and a high-intensity statin; cardiology follow-up.",
        ("implantable Device (coronary stent) linked to a Procedure", "cardiology care team",
         "antiplatelet medication checks"),
        diagnoses=(Dx("hypertension", Y(8)), Dx("hyperlipidemia", Y(10)),
                   Dx("cad", 702, "inpatient", stay_days=2)),
        events=(Event(701, "inpatient", "pci", "cad"),),
        drug_swaps=(("atorvastatin-20", "atorvastatin-80"),),
        allergies=("nka",), race="asian", race_detail=("2029-7", "Asian Indian"), smoking="former",
        coverage="medicare", pcp="okafor",
    ),
    Persona(
        "healthy", "male", Y(27),
        "Healthy young man: annual physicals with normal results, no medications, no known allergies; "
        "declined a flu shot at a visit for a sinus infection last winter.",
        ("baseline: everything in range, no H/L flags", "no known allergies (716186003)",
         "Immunization not-done with a reason"),
        diagnoses=(Dx("sinusitis", 140),),
        allergies=("nka",), pcp="johnson", features=("flu-declined", "sexual-orientation"),
    ),
    Persona(
        "vietnamese", "female", Y(45),
        "Vietnamese-speaking woman (interpreter needed; name with diacritics) with high cholesterol; a "
        "diabetes diagnosis entered in error and retracted; a treated urinary tract infection.",
        ("Unicode names", "verificationStatus entered-in-error", "a second non-English language"),
        diagnoses=(Dx("hyperlipidemia", Y(2)), Dx("t2dm", 500, verification="entered-in-error"), Dx("uti", 200)),
        allergies=("shellfish",), race="asian", race_detail=("2047-9", "Vietnamese"), language="vi",
        interpreter=True, name_locale="vi_VN", pcp="morgan",
    ),
    Persona(
        "acute-care", "female", Y(38),
        "No chronic problems, only a string of acute visits (strep throat, sinusitis, UTI, bronchitis): "
        "resolved conditions and completed antibiotic courses.",
        ("resolved Conditions with abatement dates", "completed MedicationRequests",
         "encounter-diagnosis category"),
        diagnoses=(Dx("strep-throat", 700), Dx("sinusitis", 410), Dx("uti", 150), Dx("bronchitis", 45)),
        allergies=("sulfa",), race="black", history_days=Y(2.5), pcp="johnson",
    ),
)
