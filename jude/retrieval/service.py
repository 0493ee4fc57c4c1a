"""What a server runs: the active version's job index, kept current by the feed, and the recommend call.

:class:`Retriever` holds one :class:`IndexState` (a version, its index, its feed
position) and swaps it in one assignment, so a request sees one version from start to
end: it reads the member's vector **of that version** from the online store and
searches that version's index; a member vector of version v is only ever searched
against jobs of version v.

A follower thread (:meth:`Retriever.start`):

- reads the index feed of the current version after its position and applies it;
- every ``active_check_s`` reads the job ``active`` pointer; when it moved, loads the
  bootstrap's snapshot of the new version (or rebuilds it from the online store),
  catches it up with its feed, and only then swaps it in;
- rebuilds from the online store when its feed position was trimmed away, and
  retrains the ANN lists when the job count moved (``JobIndex.needs_retrain``).

It knows nothing about HTTP; ``jude.serving.recommend`` turns its errors into 404,
422 and 429.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from jude.config.retrieval import RetrievalConfig
from jude.retrieval.build import build_from_store, load_or_build
from jude.retrieval.feed import FeedPosition, IndexFeed
from jude.retrieval.index import Hit, JobIndex
from jude.stores.online import RedisOnlineStore

log = logging.getLogger(__name__)


class MemberNotFound(LookupError):
    """No vector of the member under the index's version (unknown, deleted, or not embedded by it yet)."""


class NoIndex(RuntimeError):
    """No job index yet (no active job version, or it is still being built)."""


class BadRequest(ValueError):
    """A request the retriever refuses (a bad k or filter); ``param`` names the field."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


@dataclass
class IndexState:
    version: str
    index: JobIndex
    position: FeedPosition  # the last feed entry applied
    applied: int = 0


@dataclass
class Recommendation:
    embedding_version: str
    watermark_ms: int | None
    hits: list[Hit]
    index: str  # "ann" or "exact": which index answered
    member_event_time_ms: int | None = None
    extra: dict = field(default_factory=dict)


class Retriever:
    """The job index of the active version, followed from the feed (module docstring)."""

    def __init__(self, store: RedisOnlineStore, cfg: RetrievalConfig | None = None, feed: IndexFeed | None = None):
        self.cfg = cfg or RetrievalConfig()
        self.store = store
        self.feed = feed or IndexFeed(store.client, prefix=store.prefix, maxlen=self.cfg.feed_maxlen)
        self.state: IndexState | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_active_check = 0.0

    # ---- lifecycle -------------------------------------------------------------------------
    def load(self) -> IndexState | None:
        """Build the active version's index now (no thread); None when there is no active job version."""
        version = self.store.active_version("job")
        if version is None:
            return None
        index, position = load_or_build(self.store, self.feed, version, self.cfg)
        self.state = IndexState(version, index, position)
        self.catch_up()
        return self.state

    def start(self) -> None:
        """Load in the follower thread, then follow; ``ready`` turns True once an index is in."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="jude-retrieval-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def ready(self) -> bool:
        return self.state is not None

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                if self.state is None:
                    if self.load() is None:
                        self._stop.wait(self.cfg.active_check_s)
                        continue
                self.follow_once(block_ms=self.cfg.feed_block_ms)
                self.error = None
                backoff = 0.1
            except Exception as e:  # noqa: BLE001 - Redis away, a bad entry: logged, retried, the old index serves
                self.error = f"{type(e).__name__}: {e}"
                log.warning("job index follower: %s (retrying in %.1fs)", self.error, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    # ---- following -------------------------------------------------------------------------
    def follow_once(self, block_ms: int | None = None) -> int:
        """One round: apply what the feed has, check the active pointer, retrain if due; returns entries applied."""
        state = self.state
        if state is None:
            raise NoIndex("no job index loaded")
        n = self._apply_feed(state, block_ms)
        now = time.monotonic()
        if now - self._last_active_check >= self.cfg.active_check_s:
            self._last_active_check = now
            self.check_active()
        state = self.state
        if state.index.needs_retrain():
            state.index.retrain()
        return n

    def catch_up(self) -> int:
        """Apply the feed until it has nothing new (no blocking), then retrain if due."""
        total = 0
        while self.state is not None:
            n = self._apply_feed(self.state, None)
            total += n
            if n == 0:
                break
        if self.state is not None and self.state.index.needs_retrain():
            self.state.index.retrain()
        return total

    def _apply_feed(self, state: IndexState, block_ms: int | None) -> int:
        if self.feed.trimmed_past(state.version, state.position):  # checked before the read moves past the gap
            log.warning("job index %s: the feed was trimmed past %s; rebuilding", state.version, state.position)
            index, state.position = build_from_store(self.store, self.feed, state.version, self.cfg)
            state.index = index
        entries = self.feed.read(state.version, state.position, count=1000, block_ms=block_ms)
        if not entries:
            return 0
        state.index.apply(u for _, u in entries)
        state.position = FeedPosition(entries[-1][0], state.position.removed)
        state.applied += len(entries)
        return len(entries)

    def check_active(self) -> bool:
        """Swap to the job ``active`` version if it moved (its index built and caught up first); returns whether."""
        version = self.store.active_version("job")
        if version is None or (self.state is not None and version == self.state.version):
            return False
        index, position = load_or_build(self.store, self.feed, version, self.cfg)
        new = IndexState(version, index, position)
        while self._apply_feed(new, None):
            pass
        previous = self.state.version if self.state is not None else None
        self.state = new  # one assignment: a request holds the old state or the new one, never both
        log.info("job index flipped from %s to %s (%d jobs)", previous, version, len(index))
        return True

    # ---- requests --------------------------------------------------------------------------
    def check_request(self, k: int, exclude: Sequence[str], location: str | None) -> None:
        if not 1 <= k <= self.cfg.max_k:
            raise BadRequest(f"k must be between 1 and {self.cfg.max_k}, got {k}", "k")
        if len(exclude) > self.cfg.max_exclude:
            raise BadRequest(
                f"exclude_job_ids has {len(exclude)} ids; at most {self.cfg.max_exclude}", "filters.exclude_job_ids"
            )
        if location is not None and not location.strip():
            raise BadRequest(
                "filters.location must be a non-empty string (omit it for any location)", "filters.location"
            )

    def member_vector(self, member_id: str, version: str) -> tuple[np.ndarray, int]:
        """The member's vector of ``version`` and its event time; :class:`MemberNotFound` otherwise."""
        got = self.store.get_embeddings(self.cfg.member_entity_type, [member_id], version=version)
        if not got.found[0]:
            raise MemberNotFound(
                f"member {member_id!r} has no {self.cfg.member_entity_type} embedding of version {version!r} "
                f"in the online store"
            )
        return got.vectors[0], int(got.meta["event_time_ms"].iloc[0])

    def recommend(
        self,
        *,
        member_id: str | None = None,
        vector: np.ndarray | None = None,
        k: int | None = None,
        remote: bool | None = None,
        location: str | None = None,
        exclude: Sequence[str] = (),
        exact: bool = False,
    ) -> Recommendation:
        """Top-k jobs for a member (by id: its online vector) or a vector made by the same model."""
        k = self.cfg.default_k if k is None else k
        self.check_request(k, exclude, location)
        state = self.state
        if state is None:
            raise NoIndex(self.error or "the job index is not built yet (no active job version, or still loading)")
        member_ts = None
        if vector is None:
            if member_id is None:
                raise BadRequest("give member_id or a profile", "member_id")
            vector, member_ts = self.member_vector(member_id, state.version)
        elif np.asarray(vector).shape != (state.index.dim,):
            raise BadRequest(
                f"the member vector has shape {np.asarray(vector).shape}; the {state.version!r} job index holds "
                f"dimension {state.index.dim} (is the served model the active version's?)",
                "profile",
            )
        hits = state.index.search(vector, k, remote=remote, location=location, exclude=exclude, exact=exact)
        return Recommendation(
            state.version,
            state.index.watermark_ms,
            hits,
            "exact" if exact or not state.index.uses_ann else "ann",
            member_ts,
        )
