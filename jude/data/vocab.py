"""The vocabulary of the synthetic job marketplace: role families, skills, cities.

A *role family* is a group of job titles that are the same job for matching
purposes ("Data Engineer", "ETL Developer", "Data Platform Engineer"). Each
family has core skills (what almost every posting asks for), adjacent skills
(nice to have, picked up by neighbours), industries, and a few *related*
families (a weak fit: a Data Scientist applying to an ML Engineer job).

Some families are deliberately **confusable**: they share words or skills but
are not the same job, so topical similarity alone does not solve matching:

- Data Engineer / Data Analyst / Data Scientist / ML Engineer (all "data", all SQL/Python)
- Software Engineer / Sales Engineer / Support Engineer (all "engineer")
- Product Manager / Project Manager / Product Designer ("product", "manager")

Everything here is shared by the generator (:mod:`jude.data.synthetic`) and by
the rubric relevance judge (:mod:`jude.labels`), so both agree on what a fit is.

``ROLE_FAMILIES`` and ``CITIES`` are the unshifted vocabulary. ``SHIFT_ROLE_FAMILIES``
(healthcare, logistics, legal) and ``SHIFT_CITIES`` (another part of the world)
never occur in unshifted data; the monitoring tests use them to cause drift.
``UNSEEN_ROLE_FAMILIES`` (trades, kitchens, schools, accounting) occur only in the
unseen-world evaluation (:func:`jude.data.synthetic.generate_unseen_world`).
Cities are a fixed list of real cities ("Berlin, Germany"), the same for every
seed, so unshifted data from two seeds look alike in distribution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from jude.data.schema import SENIORITIES


@dataclass(frozen=True)
class RoleFamily:
    """One kind of job. ``titles[0]`` is the canonical title."""

    name: str
    titles: tuple[str, ...]
    core_skills: tuple[str, ...]
    adjacent_skills: tuple[str, ...]
    industries: tuple[str, ...]
    related: tuple[str, ...] = field(default=())  # families that are a weak fit
    duties: tuple[str, ...] = field(default=())  # gerund phrases: "building data pipelines"
    studies: tuple[str, ...] = field(default=())  # typical fields of study


def _fam(name: str, titles: str, core: str, adjacent: str, industries: str, related: str = "") -> RoleFamily:
    """Compact constructor: each list is '|'-separated text."""
    split = lambda s: tuple(x.strip() for x in s.split("|") if x.strip())  # noqa: E731
    return RoleFamily(name, split(titles), split(core), split(adjacent), split(industries), split(related))


_FAMILIES = (
    # --- the data cluster (confusable with each other) ---
    _fam(
        "data_engineer",
        "Data Engineer|Big Data Engineer|ETL Developer|Data Platform Engineer",
        "Python|SQL|Apache Spark|Airflow|Kafka|dbt|Data Modeling|Snowflake",
        "AWS|Docker|Scala|Terraform|BigQuery",
        "Fintech|E-commerce|Media|Logistics Software",
        "software_engineer|ml_engineer",
    ),
    _fam(
        "data_analyst",
        "Data Analyst|Business Intelligence Analyst|Reporting Analyst|Analytics Specialist",
        "SQL|Excel|Tableau|Power BI|Data Visualization|Statistics|Looker",
        "Python|A/B Testing|dbt|Google Analytics|BigQuery",
        "Retail|E-commerce|Consulting|Insurance",
        "data_scientist|financial_analyst",
    ),
    _fam(
        "data_scientist",
        "Data Scientist|Applied Scientist|Decision Scientist|Quantitative Researcher",
        "Python|Statistics|Machine Learning|scikit-learn|A/B Testing|pandas|Experiment Design",
        "SQL|PyTorch|R|Causal Inference|Data Visualization",
        "Fintech|Healthtech|E-commerce|Insurance",
        "data_analyst|ml_engineer",
    ),
    _fam(
        "ml_engineer",
        "Machine Learning Engineer|ML Engineer|MLOps Engineer|AI Engineer",
        "Python|PyTorch|TensorFlow|MLOps|Kubernetes|Model Serving|Docker",
        "Machine Learning|Apache Spark|AWS|LLMs|Feature Stores",
        "AI Startups|Fintech|Autonomous Vehicles|E-commerce",
        "data_scientist|data_engineer",
    ),
    # --- the "engineer" cluster (Software / Sales / Support) ---
    _fam(
        "software_engineer",
        "Software Engineer|Backend Engineer|Software Developer|Java Developer",
        "Java|Go|Python|REST APIs|Microservices|PostgreSQL|Git|System Design",
        "Docker|Kubernetes|AWS|gRPC|Redis",
        "SaaS|Fintech|E-commerce|Gaming",
        "frontend_engineer|devops_engineer|data_engineer|qa_engineer",
    ),
    _fam(
        "frontend_engineer",
        "Frontend Engineer|Frontend Developer|UI Engineer|React Developer",
        "JavaScript|TypeScript|React|CSS|HTML|Web Performance|Accessibility",
        "Node.js|GraphQL|Figma|Next.js|Jest",
        "SaaS|Media|E-commerce|Agencies",
        "software_engineer|product_designer",
    ),
    _fam(
        "devops_engineer",
        "DevOps Engineer|Site Reliability Engineer|Platform Engineer|Cloud Engineer",
        "Kubernetes|Terraform|AWS|Linux|CI/CD|Prometheus|Docker",
        "Go|Python|Networking|Ansible|Incident Management",
        "SaaS|Cloud Infrastructure|Fintech|Telecommunications",
        "software_engineer",
    ),
    _fam(
        "qa_engineer",
        "QA Engineer|Test Automation Engineer|Software Tester|Quality Assurance Analyst",
        "Test Automation|Selenium|Cypress|Test Planning|Regression Testing|API Testing|CI/CD",
        "Java|Python|Jira|Performance Testing|SQL",
        "SaaS|Gaming|Banking|Automotive Software",
        "software_engineer|support_engineer",
    ),
    _fam(
        "sales_engineer",
        "Sales Engineer|Solutions Engineer|Pre-Sales Consultant|Technical Sales Engineer",
        "Technical Demos|Solution Design|Proof of Concept|Presentations|Customer Discovery|CRM|RFP Responses",
        "REST APIs|Salesforce|Negotiation|Python|Cloud Architecture",
        "SaaS|Cybersecurity|Cloud Infrastructure|Industrial Software",
        "account_executive|support_engineer",
    ),
    _fam(
        "support_engineer",
        "Support Engineer|Technical Support Engineer|Customer Support Engineer|Application Support Analyst",
        "Troubleshooting|Ticketing Systems|Customer Communication|Incident Management|Zendesk|Linux|SQL",
        "Python|Networking|Jira|Knowledge Base Writing|Bash",
        "SaaS|Telecommunications|Hardware|Fintech",
        "sales_engineer|qa_engineer",
    ),
    # --- the "product" cluster (Product Manager / Project Manager / Product Designer) ---
    _fam(
        "product_manager",
        "Product Manager|Technical Product Manager|Product Owner|Group Product Manager",
        "Product Strategy|Roadmapping|User Research|A/B Testing|Stakeholder Management|Product Analytics|Agile",
        "SQL|Jira|Figma|Pricing|Go-to-Market",
        "SaaS|Marketplaces|Fintech|Consumer Apps",
        "product_designer",
    ),
    _fam(
        "project_manager",
        "Project Manager|Program Manager|Delivery Manager|Project Coordinator",
        "Project Planning|Risk Management|Budgeting|Stakeholder Management|Agile|MS Project|Resource Planning",
        "PMP|Scrum|Vendor Management|Jira|Change Management",
        "Construction|Consulting|IT Services|Public Sector",
        "",
    ),
    _fam(
        "product_designer",
        "Product Designer|UX Designer|UI/UX Designer|Interaction Designer",
        "Figma|User Research|Prototyping|Wireframing|Design Systems|Usability Testing|Interaction Design",
        "HTML|CSS|Accessibility|Illustration|Motion Design",
        "SaaS|Consumer Apps|Agencies|Media",
        "product_manager|frontend_engineer",
    ),
    # --- business roles ---
    _fam(
        "marketing_manager",
        "Marketing Manager|Digital Marketing Manager|Growth Marketer|Performance Marketing Manager",
        "SEO|Google Analytics|Content Strategy|Paid Social|Email Marketing|Campaign Management|Marketing Automation",
        "A/B Testing|HubSpot|Copywriting|Brand Strategy|CRM",
        "Consumer Goods|E-commerce|Media|Travel",
        "account_executive",
    ),
    _fam(
        "account_executive",
        "Account Executive|Sales Representative|Business Development Manager|Account Manager",
        "Salesforce|Negotiation|Lead Generation|Pipeline Management|Cold Calling|CRM|Closing",
        "Presentations|HubSpot|Customer Discovery|Forecasting|Contract Negotiation",
        "SaaS|Telecommunications|Manufacturing|Advertising",
        "sales_engineer|marketing_manager",
    ),
    _fam(
        "financial_analyst",
        "Financial Analyst|FP&A Analyst|Investment Analyst|Finance Associate",
        "Financial Modeling|Excel|Forecasting|Budgeting|Valuation|Accounting|SAP",
        "SQL|Power BI|Statistics|Bloomberg Terminal|VBA",
        "Banking|Insurance|Private Equity|Manufacturing",
        "data_analyst",
    ),
    _fam(
        "recruiter",
        "Recruiter|Technical Recruiter|Talent Acquisition Specialist|Talent Sourcer",
        "Sourcing|Interviewing|Applicant Tracking Systems|Employer Branding|Onboarding|LinkedIn Recruiter"
        "|Offer Negotiation",
        "HR Policies|Stakeholder Management|Excel|Diversity Hiring|Compensation Benchmarking",
        "Staffing|SaaS|Consulting|Retail",
        "",
    ),
)

# Families that never occur in unshifted data (``shift="roles"``): other industries entirely.
_SHIFT_FAMILIES = (
    _fam(
        "nurse",
        "Registered Nurse|ICU Nurse|Nurse Practitioner|Clinical Nurse",
        "Patient Care|Medication Administration|Triage|Electronic Health Records|BLS Certification|Wound Care"
        "|IV Therapy",
        "Patient Education|Infection Control|Phlebotomy|Care Planning|Telemetry",
        "Hospitals|Home Care|Clinics|Long-term Care",
        "pharmacist",
    ),
    _fam(
        "pharmacist",
        "Pharmacist|Clinical Pharmacist|Pharmacy Technician|Hospital Pharmacist",
        "Pharmacology|Dispensing|Drug Interactions|Patient Counseling|Compounding|Prescription Review|Pharmacy Law",
        "Inventory Control|Immunization|Medication Therapy Management|Electronic Health Records|Sterile Preparation",
        "Retail Pharmacy|Hospitals|Pharmaceuticals|Clinics",
        "nurse",
    ),
    _fam(
        "logistics_coordinator",
        "Logistics Coordinator|Dispatcher|Freight Coordinator|Shipping Coordinator",
        "Freight Scheduling|Route Planning|Warehouse Management Systems|Customs Documentation|Carrier Relations"
        "|Incoterms|Fleet Tracking",
        "Inventory Control|Forklift Certification|ERP|Last-mile Delivery|Hazmat Handling",
        "Logistics|Shipping|Wholesale|Ports",
        "supply_chain_planner",
    ),
    _fam(
        "supply_chain_planner",
        "Supply Chain Planner|Procurement Specialist|Demand Planner|Purchasing Buyer",
        "Demand Forecasting|Procurement|Supplier Management|ERP|Inventory Optimization|S&OP|Purchase Orders",
        "Incoterms|Contract Negotiation|Lean Manufacturing|Six Sigma|Cost Analysis",
        "Manufacturing|Wholesale|Food Production|Automotive",
        "logistics_coordinator",
    ),
    _fam(
        "legal",
        "Paralegal|Legal Assistant|Associate Attorney|Litigation Paralegal",
        "Legal Research|Contract Drafting|Litigation Support|Case Management|Due Diligence|Legal Writing|E-Discovery",
        "Regulatory Compliance|Notary Public|Corporate Law|Court Filings|Client Intake",
        "Law Firms|Corporate Legal|Public Sector|Real Estate",
        "",
    ),
)

# What people in each family do all day (job descriptions and resume bullets), and what they studied.
_DUTIES = {
    "data_engineer": (
        "building batch and streaming data pipelines",
        "modelling the data warehouse",
        "keeping data quality checks and SLAs green",
        "migrating legacy ETL jobs to the cloud",
    ),
    "data_analyst": (
        "building dashboards for business stakeholders",
        "answering ad-hoc questions with SQL",
        "tracking weekly KPIs and explaining their movements",
        "defining metrics with finance and sales",
    ),
    "data_scientist": (
        "designing and analysing A/B experiments",
        "building forecasting and propensity models",
        "turning messy data into causal insights",
        "presenting findings to leadership",
    ),
    "ml_engineer": (
        "taking models from notebooks to production",
        "building training and serving infrastructure",
        "monitoring model quality and drift",
        "optimising inference latency on GPUs",
    ),
    "software_engineer": (
        "designing and building backend services",
        "owning APIs used by millions of requests a day",
        "reviewing code and mentoring teammates",
        "improving reliability and performance of core systems",
    ),
    "frontend_engineer": (
        "building responsive web interfaces",
        "turning designs into accessible components",
        "improving page load performance",
        "maintaining the design system in code",
    ),
    "devops_engineer": (
        "running Kubernetes clusters in production",
        "automating infrastructure as code",
        "being on call and leading incident reviews",
        "building CI/CD pipelines for all teams",
    ),
    "qa_engineer": (
        "writing automated end-to-end tests",
        "planning regression test cycles for releases",
        "tracking down flaky tests and bugs",
        "testing APIs and performance under load",
    ),
    "sales_engineer": (
        "running technical demos for prospects",
        "designing solutions for enterprise customers",
        "leading proofs of concept with the sales team",
        "answering security questionnaires and RFPs",
    ),
    "support_engineer": (
        "troubleshooting customer issues across the stack",
        "handling escalated support tickets",
        "writing knowledge base articles",
        "reproducing bugs and working with engineering on fixes",
    ),
    "product_manager": (
        "owning the product roadmap",
        "talking to customers to find their problems",
        "writing product requirements with engineering and design",
        "deciding what to build next from data",
    ),
    "project_manager": (
        "planning projects and tracking milestones",
        "managing budgets, risks and timelines",
        "coordinating vendors and internal teams",
        "reporting project status to sponsors",
    ),
    "product_designer": (
        "designing end-to-end user flows",
        "running usability tests with real users",
        "building prototypes in Figma",
        "maintaining the design system",
    ),
    "marketing_manager": (
        "planning and running campaigns across channels",
        "growing organic traffic through SEO and content",
        "managing the paid social budget",
        "reporting on funnel conversion",
    ),
    "account_executive": (
        "closing new business with mid-market customers",
        "building and managing the sales pipeline",
        "negotiating contracts and renewals",
        "prospecting new accounts",
    ),
    "financial_analyst": (
        "building financial models and forecasts",
        "preparing the monthly budget review",
        "analysing investment opportunities",
        "supporting the annual planning cycle",
    ),
    "recruiter": (
        "sourcing candidates for hard-to-fill roles",
        "running interview loops with hiring managers",
        "negotiating offers",
        "improving the candidate experience",
    ),
    "nurse": (
        "providing direct patient care on a busy ward",
        "administering medications and IV therapy",
        "triaging patients in the emergency department",
        "documenting care in electronic health records",
    ),
    "pharmacist": (
        "dispensing prescriptions accurately",
        "counselling patients on their medication",
        "reviewing prescriptions for drug interactions",
        "managing pharmacy inventory",
    ),
    "logistics_coordinator": (
        "scheduling inbound and outbound freight",
        "planning delivery routes",
        "preparing customs documentation",
        "working with carriers to resolve delays",
    ),
    "supply_chain_planner": (
        "forecasting demand for key product lines",
        "negotiating with suppliers",
        "keeping inventory at target levels",
        "running the monthly S&OP process",
    ),
    "legal": (
        "drafting and reviewing contracts",
        "preparing court filings",
        "researching case law",
        "managing discovery for litigation",
    ),
}
_STUDIES = {
    "data_engineer": ("Computer Science", "Information Systems"),
    "data_analyst": ("Economics", "Statistics", "Business"),
    "data_scientist": ("Statistics", "Physics", "Mathematics"),
    "ml_engineer": ("Computer Science", "Mathematics"),
    "software_engineer": ("Computer Science", "Software Engineering"),
    "frontend_engineer": ("Computer Science", "Media Design"),
    "devops_engineer": ("Computer Science", "Electrical Engineering"),
    "qa_engineer": ("Computer Science", "Information Systems"),
    "sales_engineer": ("Electrical Engineering", "Business Informatics"),
    "support_engineer": ("Information Technology", "Communications"),
    "product_manager": ("Business", "Computer Science"),
    "project_manager": ("Business Administration", "Civil Engineering"),
    "product_designer": ("Interaction Design", "Psychology"),
    "marketing_manager": ("Marketing", "Communications"),
    "account_executive": ("Business", "Communications"),
    "financial_analyst": ("Finance", "Accounting", "Economics"),
    "recruiter": ("Psychology", "Human Resources"),
    "nurse": ("Nursing",),
    "pharmacist": ("Pharmacy",),
    "logistics_coordinator": ("Logistics", "Business"),
    "supply_chain_planner": ("Supply Chain Management", "Industrial Engineering"),
    "legal": ("Law", "Paralegal Studies"),
}
_FAMILIES = tuple(replace(f, duties=_DUTIES[f.name], studies=_STUDIES[f.name]) for f in _FAMILIES)
_SHIFT_FAMILIES = tuple(replace(f, duties=_DUTIES[f.name], studies=_STUDIES[f.name]) for f in _SHIFT_FAMILIES)

# Families only the unseen-world evaluation draws from (jude.data.synthetic.generate_unseen_world): trades,
# kitchens, schools and offices no training marketplace has, some with look-alike words ("Site Engineer",
# "Structural Engineer" beside the trained engineers; "Accountant" beside "Account Manager").
_UNSEEN_FAMILIES = tuple(
    replace(f, duties=duties, studies=studies)
    for f, duties, studies in (
        (
            _fam(
                "electrician",
                "Electrician|Electrical Technician|Maintenance Electrician|Journeyman Electrician",
                "Electrical Wiring|Circuit Troubleshooting|Blueprint Reading|Electrical Codes|Conduit Bending"
                "|Motor Controls|Lockout/Tagout",
                "PLC Programming|Solar Installation|Fire Alarm Systems|HVAC|Low Voltage Cabling",
                "Construction|Facilities Management|Utilities|Industrial Maintenance",
                "civil_engineer",
            ),
            (
                "installing and repairing wiring in commercial buildings",
                "tracing faults in motor control circuits",
                "reading blueprints and planning cable runs",
                "inspecting installations against the electrical code",
            ),
            ("Electrical Installation", "Electrical Technology"),
        ),
        (
            _fam(
                "civil_engineer",
                "Civil Engineer|Structural Engineer|Site Engineer|Geotechnical Engineer",
                "AutoCAD|Structural Analysis|Site Supervision|Building Codes|Quantity Surveying|Civil 3D"
                "|Concrete Design",
                "Revit|Project Scheduling|Land Surveying|Environmental Permits|BIM",
                "Construction|Infrastructure|Engineering Consultancies|Public Works",
                "electrician",
            ),
            (
                "designing reinforced concrete structures",
                "supervising contractors on site",
                "checking drawings against building codes",
                "estimating quantities and costs for tenders",
            ),
            ("Civil Engineering", "Structural Engineering"),
        ),
        (
            _fam(
                "chef",
                "Head Chef|Sous Chef|Line Cook|Pastry Chef",
                "Menu Planning|Food Safety|Knife Skills|Inventory Ordering|Kitchen Management|Food Costing|Plating",
                "Catering|Baking|Allergen Management|Wine Pairing|Butchery",
                "Restaurants|Hotels|Event Catering|Cruise Lines",
            ),
            (
                "running the line during dinner service",
                "writing seasonal menus",
                "ordering stock and keeping food costs down",
                "training junior cooks in food safety",
            ),
            ("Culinary Arts", "Hospitality Management"),
        ),
        (
            _fam(
                "teacher",
                "Teacher|Primary School Teacher|Secondary School Teacher|Special Education Teacher",
                "Lesson Planning|Classroom Management|Curriculum Development|Student Assessment"
                "|Differentiated Instruction|Parent Communication|Educational Technology",
                "Special Educational Needs|Tutoring|Google Classroom|Bilingual Education|Exam Preparation",
                "Schools|Tutoring Services|Early Education|Academies",
            ),
            (
                "planning lessons for mixed-ability classes",
                "assessing students and reporting to parents",
                "adapting the curriculum for students with special needs",
                "running after-school clubs",
            ),
            ("Education", "Mathematics Education"),
        ),
        (
            _fam(
                "accountant",
                "Accountant|Management Accountant|Tax Accountant|Bookkeeper",
                "Bookkeeping|General Ledger|Accounts Payable|Accounts Receivable|Bank Reconciliation|Tax Returns"
                "|Month-End Close",
                "Payroll|QuickBooks|Auditing|VAT|IFRS",
                "Accounting Firms|Property Management|Nonprofits|Wholesale Trade",
            ),
            (
                "closing the books at month end",
                "reconciling bank accounts and the general ledger",
                "preparing tax returns for small businesses",
                "processing supplier invoices and payroll",
            ),
            ("Accounting", "Business Administration"),
        ),
    )
)

ROLE_FAMILIES: dict[str, RoleFamily] = {f.name: f for f in _FAMILIES}
SHIFT_ROLE_FAMILIES: dict[str, RoleFamily] = {f.name: f for f in _SHIFT_FAMILIES}
UNSEEN_ROLE_FAMILIES: dict[str, RoleFamily] = {f.name: f for f in _UNSEEN_FAMILIES}
ALL_ROLE_FAMILIES: dict[str, RoleFamily] = {**ROLE_FAMILIES, **SHIFT_ROLE_FAMILIES, **UNSEEN_ROLE_FAMILIES}

# Pairs of confusable families: similar words, different job (the hard negatives).
CONFUSABLE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("data_engineer", "data_analyst", "data_scientist", "ml_engineer"),
    ("software_engineer", "sales_engineer", "support_engineer"),
    ("product_manager", "project_manager", "product_designer"),
)

# Real cities, "City, Country" or "City, ST". The unshifted set (Europe and North America)
# and a disjoint set used only by ``shift="cities"``. Weights make a few hubs larger,
# as in any real marketplace.
CITIES: tuple[str, ...] = (
    "Berlin, Germany",
    "Munich, Germany",
    "Hamburg, Germany",
    "London, United Kingdom",
    "Manchester, United Kingdom",
    "Paris, France",
    "Lyon, France",
    "Amsterdam, Netherlands",
    "Rotterdam, Netherlands",
    "Madrid, Spain",
    "Barcelona, Spain",
    "Lisbon, Portugal",
    "Dublin, Ireland",
    "Stockholm, Sweden",
    "Copenhagen, Denmark",
    "Zurich, Switzerland",
    "Vienna, Austria",
    "Warsaw, Poland",
    "Prague, Czech Republic",
    "Milan, Italy",
    "New York, NY",
    "San Francisco, CA",
    "Austin, TX",
    "Seattle, WA",
    "Boston, MA",
    "Chicago, IL",
    "Toronto, Canada",
)
CITY_WEIGHTS: tuple[float, ...] = tuple(3.0 if i in (0, 3, 5, 20, 21) else 1.0 for i in range(len(CITIES)))

SHIFT_CITIES: tuple[str, ...] = (
    "Tokyo, Japan",
    "Osaka, Japan",
    "Seoul, South Korea",
    "Busan, South Korea",
    "Mumbai, India",
    "Bengaluru, India",
    "Hyderabad, India",
    "Singapore, Singapore",
    "Jakarta, Indonesia",
    "Manila, Philippines",
    "Sydney, Australia",
    "Melbourne, Australia",
    "Sao Paulo, Brazil",
    "Rio de Janeiro, Brazil",
    "Buenos Aires, Argentina",
    "Mexico City, Mexico",
    "Bogota, Colombia",
    "Cape Town, South Africa",
    "Nairobi, Kenya",
    "Lagos, Nigeria",
    "Cairo, Egypt",
    "Dubai, UAE",
    "Istanbul, Turkey",
    "Bangkok, Thailand",
    "Ho Chi Minh City, Vietnam",
)

# Seniority: the years a member needs, the years a posting asks for, and title prefixes.
# Bands (years of experience): junior < 2 <= mid < 5 <= senior < 9 <= lead.
SENIORITY_BY_YEARS: tuple[tuple[float, str], ...] = ((0.0, "junior"), (2.0, "mid"), (5.0, "senior"), (9.0, "lead"))
MIN_YEARS_BY_SENIORITY: dict[str, tuple[int, int]] = {  # inclusive range of a posting's min_years
    "junior": (0, 1),
    "mid": (2, 4),
    "senior": (5, 7),
    "lead": (9, 12),
}
SENIORITY_PREFIXES: dict[str, tuple[str, ...]] = {
    "junior": ("Junior", "Jr.", "Entry-level"),
    "mid": ("",),
    "senior": ("Senior", "Sr."),
    "lead": ("Lead", "Principal", "Staff"),
}
assert tuple(s for _, s in SENIORITY_BY_YEARS) == SENIORITIES

_PREFIX_TO_SENIORITY = {p.lower(): s for s, ps in SENIORITY_PREFIXES.items() for p in ps if p} | {
    "jr": "junior",
    "sr": "senior",
    "mid-level": "mid",
    "intermediate": "mid",
}
_SUFFIX_RE = re.compile(r"\s*(?:\b(?:i{1,3}|iv|\d)\b|\(.*?\))\s*$")  # "Software Engineer II", "... (m/f/d)"
_TITLE_TO_FAMILY = {t.lower(): f.name for f in ALL_ROLE_FAMILIES.values() for t in f.titles}
_TITLES_LONGEST_FIRST = sorted(_TITLE_TO_FAMILY, key=len, reverse=True)
assert len(_TITLE_TO_FAMILY) == sum(len(f.titles) for f in ALL_ROLE_FAMILIES.values()), "titles must be unique"


def seniority_for_years(years: float) -> str:
    """The seniority band for ``years`` of experience: junior, mid, senior or lead."""
    if years < 0:
        raise ValueError(f"years must be >= 0, got {years}")
    band = SENIORITY_BY_YEARS[0][1]
    for threshold, name in SENIORITY_BY_YEARS:
        if years >= threshold:
            band = name
    return band


def _split_title(title: str) -> tuple[str | None, str]:
    """'Sr. Data Engineer II' -> ('senior', 'data engineer')."""
    t = " ".join(str(title).replace(",", " ").split()).lower()
    t = _SUFFIX_RE.sub("", t).strip()
    seniority = None
    first, _, rest = t.partition(" ")
    if t not in _TITLE_TO_FAMILY and first in _PREFIX_TO_SENIORITY and rest:
        seniority, t = _PREFIX_TO_SENIORITY[first], rest
    return seniority, t


def role_family_of(title: str) -> str | None:
    """The role family of any generated job or member title, else None.

    Case-insensitive; ignores seniority prefixes ("Senior", "Sr.", "Lead",
    "Junior", ...) and level suffixes ("II", "(m/f/d)"). Titles that merely
    contain a known title ("Senior Data Engineer, Payments") map by the longest
    known title they contain, at word boundaries.
    """
    if not isinstance(title, str) or not title.strip():
        return None
    _, core = _split_title(title)
    if core in _TITLE_TO_FAMILY:
        return _TITLE_TO_FAMILY[core]
    for known in _TITLES_LONGEST_FIRST:
        if re.search(rf"(?<![\w/]){re.escape(known)}(?![\w/])", core):
            return _TITLE_TO_FAMILY[known]
    return None


def seniority_of_title(title: str) -> str | None:
    """The seniority a title's prefix states ('Senior ...' -> 'senior'); 'mid' for a bare known title."""
    seniority, _ = _split_title(title)
    if seniority is not None:
        return seniority
    return "mid" if role_family_of(title) is not None else None


def family_fit(a: str | None, b: str | None) -> float:
    """How well two role families fit: 1.0 same, 0.5 related (either direction), 0.0 otherwise."""
    if a is None or b is None:
        return 0.0
    if a == b:
        return 1.0
    fa, fb = ALL_ROLE_FAMILIES.get(a), ALL_ROLE_FAMILIES.get(b)
    if (fa is not None and b in fa.related) or (fb is not None and a in fb.related):
        return 0.5
    return 0.0


def are_confusable(a: str | None, b: str | None) -> bool:
    """True for two *different* families from the same confusable group (similar words, other job)."""
    if a is None or b is None or a == b:
        return False
    return any(a in g and b in g for g in CONFUSABLE_GROUPS)


def skill_overlap(required: list[str], have: list[str]) -> float:
    """Share of ``required`` skills found in ``have`` (case-insensitive); 1.0 if nothing is required."""
    req = {s.strip().lower() for s in required if str(s).strip()}
    if not req:
        return 1.0
    got = {s.strip().lower() for s in have if str(s).strip()}
    return len(req & got) / len(req)


def location_fit(member_location: str, job_location: str, remote: bool) -> bool:
    """A member can take a job that is remote or in the member's own city."""
    return bool(remote) or member_location.strip().lower() == job_location.strip().lower()
