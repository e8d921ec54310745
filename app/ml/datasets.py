"""MovieLens importer: read the GroupLens CSV files into typed records."""

from __future__ import annotations

import csv
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar
from urllib.parse import urlparse

import numpy as np

ML_LATEST_SMALL_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
NO_GENRES = "(no genres listed)"
DOWNLOAD_TIMEOUT_S = 60.0
DOWNLOAD_CHUNK = 1 << 16

_YEAR_RE = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)\s*$")
_MOVIES_HEADER = ["movieId", "title", "genres"]
_RATINGS_HEADER = ["userId", "movieId", "rating", "timestamp"]
_TAGS_HEADER = ["userId", "movieId", "tag", "timestamp"]
_LINKS_HEADER = ["movieId", "imdbId", "tmdbId"]

T = TypeVar("T")


class DatasetUnavailable(Exception):
    """The data set could not be found or fetched."""


@dataclass(frozen=True)
class Movie:
    """One movie with its genres, external ids and the users' tags."""

    movie_id: str
    title: str
    genres: tuple[str, ...]
    year: int | None
    imdb_id: str | None
    tmdb_id: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Ratings:
    """Explicit ratings as parallel arrays, in file order."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        """Number of ratings."""
        return int(self.values.shape[0])


@dataclass(frozen=True)
class MovieLens:
    """A loaded MovieLens data set."""

    movies: list[Movie]
    ratings: Ratings


def parse_year(title: str) -> int | None:
    """Year from a trailing "(1995)" (or "(2006-2007)") in a MovieLens title."""
    match = _YEAR_RE.search(title)
    return int(match.group(1)) if match else None


def _bad_line(path: Path, line: int, reason: str) -> ValueError:
    return ValueError(f"{path}: line {line}: {reason}")


@contextmanager
def _rows(path: Path, header: list[str]) -> Iterator[Iterator[tuple[int, list[str]]]]:
    """Yield (line number, fields) for each data row, after checking the header."""
    if not path.is_file():
        raise DatasetUnavailable(f"MovieLens file not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None or [f.strip().lstrip("\ufeff") for f in first] != header:
            raise _bad_line(path, 1, f"expected header {','.join(header)}, got {first}")

        def numbered() -> Iterator[tuple[int, list[str]]]:
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise _bad_line(
                        path,
                        reader.line_num,
                        f"expected {len(header)} fields, got {len(row)}",
                    )
                yield reader.line_num, row

        yield numbered()


def _read_tags(path: Path) -> dict[str, list[str]]:
    """Tags per movie id, deduplicated case-insensitively in order of first appearance."""
    tags: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    if not path.is_file():
        return tags
    with _rows(path, _TAGS_HEADER) as rows:
        for _, (_, movie_id, tag, _) in rows:
            text = tag.strip()
            key = text.casefold()
            if not text or key in seen.setdefault(movie_id, set()):
                continue
            seen[movie_id].add(key)
            tags.setdefault(movie_id, []).append(text)
    return tags


def _read_links(path: Path) -> dict[str, tuple[str | None, str | None]]:
    """(imdbId, tmdbId) per movie id; empty fields become None."""
    links: dict[str, tuple[str | None, str | None]] = {}
    if not path.is_file():
        return links
    with _rows(path, _LINKS_HEADER) as rows:
        for _, (movie_id, imdb, tmdb) in rows:
            links[movie_id] = (imdb.strip() or None, tmdb.strip() or None)
    return links


def _read_movies(
    path: Path,
    links: dict[str, tuple[str | None, str | None]],
    tags: dict[str, list[str]],
) -> list[Movie]:
    movies: list[Movie] = []
    with _rows(path, _MOVIES_HEADER) as rows:
        for line, (movie_id, title, genres) in rows:
            if not movie_id.strip() or not title.strip():
                raise _bad_line(path, line, "empty movieId or title")
            genre_list = tuple(g for g in genres.split("|") if g and g != NO_GENRES)
            imdb, tmdb = links.get(movie_id, (None, None))
            movies.append(
                Movie(
                    movie_id=movie_id,
                    title=title,
                    genres=genre_list,
                    year=parse_year(title),
                    imdb_id=imdb,
                    tmdb_id=tmdb,
                    tags=tuple(tags.get(movie_id, ())),
                )
            )
    return movies


def _column(path: Path, lines: list[int], values: list[str], dtype: type, name: str) -> np.ndarray:
    """Convert a column of strings with numpy, naming the first bad line on failure."""
    try:
        return np.array(values, dtype=dtype)
    except (ValueError, OverflowError):
        for line, value in zip(lines, values, strict=True):
            try:
                np.array([value], dtype=dtype)
            except (ValueError, OverflowError):
                raise _bad_line(path, line, f"bad {name} {value!r}") from None
        raise


def _read_ratings(path: Path) -> Ratings:
    lines: list[int] = []
    users: list[str] = []
    items: list[str] = []
    values: list[str] = []
    stamps: list[str] = []
    with _rows(path, _RATINGS_HEADER) as rows:
        for line, (user, item, value, stamp) in rows:
            lines.append(line)
            users.append(user)
            items.append(item)
            values.append(value)
            stamps.append(stamp)
    rating = _column(path, lines, values, np.float32, "rating")
    finite = np.isfinite(rating)
    if not finite.all():
        raise _bad_line(path, lines[int(np.argmin(finite))], "rating is not a finite number")
    return Ratings(
        user_ids=np.array(users, dtype=object),
        item_ids=np.array(items, dtype=object),
        values=rating,
        timestamps=_column(path, lines, stamps, np.int64, "timestamp"),
    )


def load_movielens(path: Path, progress: bool = False) -> MovieLens:
    """Load movies (with links and tags) and ratings from an extracted MovieLens directory."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetUnavailable(f"MovieLens directory not found: {path}")
    for required in ("movies.csv", "ratings.csv"):
        if not (path / required).is_file():
            raise DatasetUnavailable(f"MovieLens file not found: {path / required}")
    with _progress(progress) as step:
        links = step("links.csv", lambda: _read_links(path / "links.csv"))
        tags = step("tags.csv", lambda: _read_tags(path / "tags.csv"))
        movies = step("movies.csv", lambda: _read_movies(path / "movies.csv", links, tags))
        ratings = step("ratings.csv", lambda: _read_ratings(path / "ratings.csv"))
    return MovieLens(movies=movies, ratings=ratings)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, Callable[[], T]], T]]:
    """Yield a runner for named loading steps that advances a rich progress bar if enabled."""
    if not enabled:
        yield lambda _name, fn: fn()
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("Loading MovieLens", total=4)

        def step(name: str, fn: Callable[[], T]) -> T:
            bar.update(task, description=f"Reading {name}")
            result = fn()
            bar.advance(task)
            return result

        yield step


def _join_words(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def movie_description(movie: Movie) -> str:
    """A short description built from the genres and the users' tags."""
    parts = [f"{_join_words(list(movie.genres))} film." if movie.genres else "Film."]
    if movie.tags:
        parts.append(f"Tagged: {', '.join(movie.tags)}.")
    return " ".join(parts)


def movie_content(movie: Movie) -> dict[str, object]:
    """The movie as a content record (fields of the content table)."""
    tags: list[str] = []
    seen: set[str] = set()
    for tag in (*movie.genres, *(t.lower() for t in movie.tags)):
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
    return {
        "id": movie.movie_id,
        "title": movie.title,
        "description": movie_description(movie),
        "content_type": "video",
        "status": "published",
        "category": movie.genres[0] if movie.genres else None,
        "tags": tags,
        "metadata": {
            "year": movie.year,
            "genres": list(movie.genres),
            "imdbId": movie.imdb_id,
            "tmdbId": movie.tmdb_id,
        },
    }


def _safe_extract(archive: zipfile.ZipFile, dest: Path) -> None:
    """Extract, refusing members that would land outside dest."""
    for name in archive.namelist():
        member = PurePosixPath(name)
        if member.is_absolute() or ".." in member.parts:
            raise DatasetUnavailable(f"refusing unsafe path in archive: {name}")
    archive.extractall(dest)


def _copy_with_progress(response: Any, buffer: IO[bytes], progress: Callable[[int, int | None], None]) -> None:
    length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
    total = int(length) if length and str(length).isdigit() else None
    done = 0
    progress(done, total)
    while chunk := response.read(DOWNLOAD_CHUNK):
        buffer.write(chunk)
        done += len(chunk)
        progress(done, total)


def download_movielens(
    dest: Path, url: str = ML_LATEST_SMALL_URL, progress: Callable[[int, int | None], None] | None = None
) -> Path:
    """Download and extract a GroupLens MovieLens zip into dest; return the data directory.

    `progress(bytes_so_far, total_or_None)` is called as the download advances.
    """
    dest = Path(dest)
    target = dest / PurePosixPath(urlparse(url).path).stem
    if (target / "movies.csv").is_file() and (target / "ratings.csv").is_file():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryFile() as buffer:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                _copy_with_progress(response, buffer, progress or (lambda _done, _total: None))
            buffer.seek(0)
            with zipfile.ZipFile(buffer) as archive:
                _safe_extract(archive, dest)
    except (urllib.error.URLError, OSError, ValueError, zipfile.BadZipFile) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetUnavailable(
            f"could not download MovieLens from {url}: {reason}. Pass the path of an extracted copy instead."
        ) from exc
    if not target.is_dir():
        raise DatasetUnavailable(f"the archive from {url} has no {target.name}/ directory")
    return target
