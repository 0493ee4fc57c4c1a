"""The shared vocabulary: role families, title parsing, seniority bands, skill overlap."""

from __future__ import annotations

import pytest

from jude.data import vocab
from jude.data.schema import SENIORITIES


def test_family_count_and_confusable_groups_exist():
    assert 14 <= len(vocab.ROLE_FAMILIES) <= 20
    for group in vocab.CONFUSABLE_GROUPS:
        assert all(name in vocab.ROLE_FAMILIES for name in group)
    assert vocab.are_confusable("software_engineer", "sales_engineer")
    assert not vocab.are_confusable("software_engineer", "software_engineer")
    assert not vocab.are_confusable("software_engineer", "recruiter")


def test_families_are_complete_and_related_names_exist():
    for fam in vocab.ALL_ROLE_FAMILIES.values():
        assert fam.titles and len(fam.core_skills) >= 6 and fam.adjacent_skills and fam.industries
        assert len(fam.duties) >= 3 and fam.studies
        assert all(r in vocab.ALL_ROLE_FAMILIES for r in fam.related), fam.name


def test_shift_vocabulary_is_disjoint_from_the_unshifted_one():
    assert not set(vocab.SHIFT_ROLE_FAMILIES) & set(vocab.ROLE_FAMILIES)
    base_titles = {t for f in vocab.ROLE_FAMILIES.values() for t in f.titles}
    shift_titles = {t for f in vocab.SHIFT_ROLE_FAMILIES.values() for t in f.titles}
    assert not base_titles & shift_titles
    assert not set(vocab.CITIES) & set(vocab.SHIFT_CITIES)
    assert 20 <= len(vocab.CITIES) <= 30
    assert all(", " in c for c in vocab.CITIES + vocab.SHIFT_CITIES)


@pytest.mark.parametrize("seniority", SENIORITIES)
def test_role_family_of_every_title_with_every_prefix(seniority):
    for fam in vocab.ALL_ROLE_FAMILIES.values():
        for title in fam.titles:
            for prefix in vocab.SENIORITY_PREFIXES[seniority]:
                full = f"{prefix} {title}".strip()
                assert vocab.role_family_of(full) == fam.name, full
                assert vocab.role_family_of(full.upper()) == fam.name, full.upper()
                assert vocab.seniority_of_title(full) == seniority, full


def test_role_family_of_variants_and_unknowns():
    assert vocab.role_family_of("Sr. Data Engineer II") == "data_engineer"
    assert vocab.role_family_of("Senior Data Engineer (m/f/d)") == "data_engineer"
    assert vocab.role_family_of("Data Scientist, Payments") == "data_scientist"
    assert vocab.role_family_of("Data Engineer Intern") == "data_engineer"
    # The confusable titles stay apart.
    assert vocab.role_family_of("Sales Engineer") == "sales_engineer"
    assert vocab.role_family_of("Support Engineer") == "support_engineer"
    assert vocab.role_family_of("Project Manager") == "project_manager"
    assert vocab.role_family_of("Product Manager") == "product_manager"
    # A title that starts with a seniority-looking word is still itself.
    assert vocab.role_family_of("Associate Attorney") == "legal"
    for unknown in ("Chef", "", "   ", "Senior", None):
        assert vocab.role_family_of(unknown) is None


def test_seniority_for_years_bands():
    assert [vocab.seniority_for_years(y) for y in (0, 1.9, 2, 4.5, 5, 8.9, 9, 30)] == [
        "junior",
        "junior",
        "mid",
        "mid",
        "senior",
        "senior",
        "lead",
        "lead",
    ]
    with pytest.raises(ValueError, match="years must be >= 0, got -1"):
        vocab.seniority_for_years(-1)


def test_min_years_bands_agree_with_seniority_for_years():
    for seniority, (lo, hi) in vocab.MIN_YEARS_BY_SENIORITY.items():
        assert vocab.seniority_for_years(lo) == seniority
        assert lo <= hi


def test_skill_overlap_is_case_insensitive_share_of_required():
    assert vocab.skill_overlap(["SQL", "Python", "Airflow", "dbt"], ["python", " sql ", "Excel"]) == 0.5
    assert vocab.skill_overlap([], ["SQL"]) == 1.0
    assert vocab.skill_overlap(["SQL"], []) == 0.0


def test_family_fit_is_symmetric_and_graded():
    assert vocab.family_fit("data_engineer", "data_engineer") == 1.0
    assert vocab.family_fit("data_analyst", "data_scientist") == 0.5
    assert vocab.family_fit("data_scientist", "data_analyst") == 0.5
    assert vocab.family_fit("data_engineer", "data_analyst") == 0.0  # confusable, not related
    assert vocab.family_fit(None, "data_engineer") == 0.0
    for a in vocab.ALL_ROLE_FAMILIES:
        for b in vocab.ALL_ROLE_FAMILIES:
            assert vocab.family_fit(a, b) == vocab.family_fit(b, a)


def test_location_fit():
    assert vocab.location_fit("Berlin, Germany", "berlin, germany", remote=False)
    assert not vocab.location_fit("Berlin, Germany", "Paris, France", remote=False)
    assert vocab.location_fit("Berlin, Germany", "Paris, France", remote=True)
