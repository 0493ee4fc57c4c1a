"""A judge with the :class:`jude.labels.judges.Judge` interface whose grades come from a table (no model)."""

from jude.labels.judges import Judgement


class TableJudge:
    """Grades from a {(member_id, job_id): grade} table (0 when absent); None = the judge fails on that pair."""

    def __init__(self, grades):
        self.grades = grades
        self.seen = []

    def grade_pairs(self, pairs):
        out = []
        for m, j in pairs:
            self.seen.append((m["member_id"], j["job_id"]))
            g = self.grades.get((m["member_id"], j["job_id"]), 0)
            out.append(Judgement(grade=None, error="malformed") if g is None else Judgement(grade=g, rationale="t"))
        return out
