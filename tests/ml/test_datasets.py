"""Tests for the MovieLens importer."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ml.datasets import (
    DatasetUnavailable,
    Movie,
    MovieLens,
    download_movielens,
    load_movielens,
    movie_content,
    parse_year,
)

ML_SMALL = Path(__file__).resolve().parents[3] / "shared" / "data" / "ml-latest-small"
needs_data = pytest.mark.skipif(not ML_SMALL.is_dir(), reason="MovieLens not present")


@pytest.fixture(scope="module")
def movielens() -> MovieLens:
    return load_movielens(ML_SMALL)


def _write(directory: Path, movies: str, ratings: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "movies.csv").write_text(movies)
    (directory / "ratings.csv").write_text(ratings)
    return directory


MOVIES = 'movieId,title,genres\n1,"Foo, The (1999)",Drama|Comedy\n2,Bar,(no genres listed)\n'
RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,0.5,200\n2,1,3.5,300\n"


@needs_data
def test_counts(movielens: MovieLens) -> None:
    assert len(movielens.movies) == 9742
    assert len(movielens.ratings) == 100_836


@needs_data
def test_toy_story(movielens: MovieLens) -> None:
    toy = next(m for m in movielens.movies if m.movie_id == "1")
    assert toy.title == "Toy Story (1995)"
    assert toy.year == 1995
    assert "Animation" in toy.genres
    assert toy.imdb_id == "0114709"
    assert toy.tmdb_id == "862"
    assert "pixar" in toy.tags


@needs_data
def test_ratings_arrays(movielens: MovieLens) -> None:
    r = movielens.ratings
    assert r.user_ids.dtype == object and r.item_ids.dtype == object
    assert r.values.dtype == np.float32 and r.timestamps.dtype == np.int64
    assert (r.user_ids[0], r.item_ids[0], float(r.values[0])) == ("1", "1", 4.0)
    assert int(r.timestamps[0]) == 964982703
    assert r.values.min() >= 0.5 and r.values.max() <= 5.0


@needs_data
def test_tags_deduplicated_case_insensitively(movielens: MovieLens) -> None:
    for movie in movielens.movies:
        folded = [t.casefold() for t in movie.tags]
        assert len(folded) == len(set(folded))


def test_small_files(tmp_path: Path) -> None:
    (tmp_path / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,Funny,1\n2,1,funny,2\n2,1,dark,3\n")
    (tmp_path / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0000001,\n")
    data = load_movielens(_write(tmp_path, MOVIES, RATINGS), progress=True)
    foo, bar = data.movies
    assert foo == Movie("1", "Foo, The (1999)", ("Drama", "Comedy"), 1999, "0000001", None, ("Funny", "dark"))
    assert bar.genres == () and bar.year is None and bar.tags == ()
    assert list(data.ratings.values) == [4.0, 0.5, 3.5]


def test_movie_content_fields() -> None:
    movie = Movie(
        "1",
        "Toy Story (1995)",
        ("Adventure", "Animation"),
        1995,
        "0114709",
        "862",
        ("Pixar", "fun", "animation"),
    )
    content = movie_content(movie)
    assert content["id"] == "1"
    assert content["title"] == "Toy Story (1995)"
    assert content["description"] == "Adventure and Animation film. Tagged: Pixar, fun, animation."
    assert content["content_type"] == "video"
    assert content["status"] == "published"
    assert content["category"] == "Adventure"
    assert content["tags"] == ["Adventure", "Animation", "pixar", "fun"]
    assert content["metadata"] == {
        "year": 1995,
        "genres": ["Adventure", "Animation"],
        "imdbId": "0114709",
        "tmdbId": "862",
    }


def test_movie_content_without_genres() -> None:
    content = movie_content(Movie("9", "Untitled", (), None, None, None, ()))
    assert content["category"] is None
    assert content["tags"] == []
    assert isinstance(content["description"], str) and content["description"]


@given(st.integers(min_value=1000, max_value=9999), st.text(min_size=1, max_size=30))
def test_parse_year(year: int, name: str) -> None:
    assert parse_year(f"{name} ({year})") == year
    assert parse_year(f"{name} ({year})  ") == year


def test_parse_year_absent() -> None:
    assert parse_year("Babylon 5") is None
    assert parse_year("1984") is None


def test_missing_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "movies.csv").write_text(MOVIES)
    with pytest.raises(DatasetUnavailable, match=re.escape("ratings.csv")):
        load_movielens(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable, match="nowhere"):
        load_movielens(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "ratings, line",
    [
        ("userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,oops,200\n", 3),
        ("userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,4.0,200\n1,3,4.0,x\n", 4),
        ("userId,movieId,rating,timestamp\n1,1,4.0\n", 2),
        ("userId,movieId,rating,timestamp\n1,1,nan,5\n", 2),
    ],
)
def test_bad_line_names_line_number(tmp_path: Path, ratings: str, line: int) -> None:
    with pytest.raises(ValueError, match=re.escape(f"ratings.csv: line {line}:")):
        load_movielens(_write(tmp_path, MOVIES, ratings))


def test_bad_header(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 1"):
        load_movielens(_write(tmp_path, "id,name\n1,x\n", RATINGS))


def test_download_unreachable(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/x.zip"
    with pytest.raises(DatasetUnavailable, match=re.escape(f"could not download MovieLens from {url}: ")) as info:
        download_movielens(tmp_path, url=url)
    assert "extracted copy" in str(info.value)


def test_download_reuses_extracted_copy(tmp_path: Path) -> None:
    target = _write(tmp_path / "ml-latest-small", MOVIES, RATINGS)
    assert download_movielens(tmp_path, url="http://127.0.0.1:9/ml-latest-small.zip") == target


def test_download_extracts_zip(tmp_path: Path) -> None:
    source = _write(tmp_path / "src" / "ml-test", MOVIES, RATINGS)
    archive = shutil.make_archive(str(tmp_path / "ml-test"), "zip", source.parent, "ml-test")
    dest = tmp_path / "out"
    target = download_movielens(dest, url=Path(archive).as_uri())
    assert target == dest / "ml-test"
    assert len(load_movielens(target).movies) == 2


def test_download_reports_progress_in_bytes(tmp_path: Path) -> None:
    source = _write(tmp_path / "src" / "ml-test", MOVIES, RATINGS)
    archive = Path(shutil.make_archive(str(tmp_path / "ml-test"), "zip", source.parent, "ml-test"))
    seen: list[tuple[int, int | None]] = []
    download_movielens(tmp_path / "out", url=archive.as_uri(), progress=lambda done, total: seen.append((done, total)))
    size = archive.stat().st_size
    assert seen[0] == (0, size) and seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
