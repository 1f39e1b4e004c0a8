"""Round two of the bad-input corpus (issue 15): tracebacks, silent loss in the TSV reader, missing data kept
as if present, ambiguous structure, reads outside the source, run-to-run differences, order dependence.
Called by make_corpus.py with its helpers; every case names its expected outcome in expect.json.

Extra expect.json keys: `rejects`/`records` (counts), `cfg` (dataset params), `symlinks` ({path in the case
copy: link target}, made by the test because git and copies would flatten them), and the download kinds
`download_error` / `download_ok` (`files`: what the copy must hold).
"""

from __future__ import annotations

import csv
import io


def build_round_two(m) -> None:  # m: the make_corpus module (helpers, COLS)
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rej, err, mmb, case, hf, llava, conv, b64, jpeg = m.rej, m.err, m.mmb, m.case, m.hf, m.llava, m.conv, m.b64, m.jpeg

    def row(_index, **kw):  # make_corpus.row, with `index` overridable too
        return {**m.row(_index), **kw}

    def counted(match, field, rejects=1, records=None, **extra):
        return {
            **rej(match, field),
            "rejects": rejects,
            **({"records": records} if records is not None else {}),
            **extra,
        }

    def raw_tsv(name, lines, expect):
        """A TSV written line by line, for structure a csv writer would never produce."""
        text = "\t".join(m.COLS) + "\n" + "".join("\t".join(str(v) for v in line) + "\n" for line in lines)
        case(name, {"adapter": "mmbench", "splits": ["dev"], **expect}, {"MMBench_DEV_EN.tsv": text})

    def cells(r):
        return [r.get(c, "") for c in m.COLS]

    # --- MMBench TSV: numbers that overflow, structure, missing data, references ---
    mmb("index_inf", [row(1), row(2, index="inf")], rej("not a non-negative integer", "index"))
    mmb("index_1e400", [row(1), row(2, index="1e400")], rej("not a non-negative integer", "index"))
    mmb("index_fractional", [row(1), row(2, index="2.5")], rej("not a non-negative integer", "index"))
    mmb("image_ref_inf", [row(1), row(1_000_001, image="inf")], rej("neither base64 nor a row index", "image"))
    mmb("image_ref_1e400", [row(1), row(1_000_001, image="1e400")], rej("neither base64 nor a row index", "image"))
    mmb("image_empty", [row(1), row(2, image="")], rej("referenced but empty", "image"))
    mmb("image_nan", [row(1), row(2, image="nan")], rej("referenced but empty", "image"))
    mmb("option_gap", [row(1), row(2, B="", C="z", D="w")], rej("option B is empty but option C is filled", "B"))
    mmb("answer_two_letters", [row(1), row(2, answer="AB")], rej("not one of the options", "answer"))
    mmb("duplicate_answer_column", [row(1)], err("duplicate column name 'answer'"), cols=m.COLS + ["answer"])
    mmb("duplicate_column_after_strip", [row(1)], err("duplicate column name 'hint'"), cols=m.COLS + [" hint "])
    short = cells(row(2))[:10]
    raw_tsv(
        "short_row",
        [cells(row(1)), short, cells(row(3))],
        counted("row has 10 fields, header has 14", "row", records=2),
    )
    # An opening quote never closed: rows 3-5 must survive, row 2 is the one reject (was: 1 record + 1 reject).
    unbalanced = [
        cells(row(1)),
        cells(row(2, question='"Is it red?')),
        cells(row(3)),
        cells(row(4)),
        cells(row(5, question='Is "this" quoted?')),
    ]
    raw_tsv("unbalanced_quote", unbalanced, counted("unbalanced quote", "row", records=4))
    raw_tsv(
        "unbalanced_quote_last_row",
        [cells(row(1)), cells(row(2, question='"Never closed'))],
        counted("unbalanced quote", "row", records=1),
    )
    mmb(
        "quoted_multiline_ok",
        [row(1, question='Line one\nline\ttwo "quoted"\n\nend'), row(2)],
        {"kind": "ok", "records": 2},
    )
    # Current VLMEvalKit dumps TSVs with quoting=csv.QUOTE_ALL: every cell quoted.
    mmb(
        "quote_all_ok",
        [row(1, question='Line one\n"two"'), row(1_000_001, image="1"), row(2)],
        {"kind": "ok", "records": 3},
        quoting=csv.QUOTE_ALL,
    )
    # References: chains in any order resolve; loops and chains to nowhere are rejects, whatever the order.
    mmb(
        "image_ref_chain_backwards_ok",
        [row(3_000_001, image="2000001"), row(2_000_001, image="1000001"), row(1_000_001, image="1"), row(1)],
        {"kind": "ok", "records": 4},
    )
    mmb(
        "image_ref_cycle",
        [row(1), row(1_000_002, image="2000002"), row(2_000_002, image="1000002")],
        counted("image references form a cycle: 1000002 -> 2000002 -> 1000002", "image", rejects=2, records=1),
    )
    mmb("image_ref_self", [row(1), row(2, image="2")], rej("image references form a cycle: 2 -> 2", "image"))
    mmb(
        "image_ref_into_cycle",
        [row(1), row(3_000_002, image="1000002"), row(1_000_002, image="2000002"), row(2_000_002, image="1000002")],
        counted(
            "image references form a cycle: 1000002 -> 2000002 -> 1000002",
            "image",
            rejects=3,
            records=1,
            matches=["refers to index 1000002, whose", "", ""],
        ),
    )
    mmb(
        "image_ref_to_bad_image",
        [row(1), row(2, image=b64(b"not an image at all " * 5)), row(1_000_002, image="2")],
        counted(
            "", "image", rejects=2, records=1, matches=["undecodable image", "refers to index 2, which has no image"]
        ),
    )
    mmb(
        "image_ref_chain_to_nowhere",
        [row(1), row(1_000_005, image="2000005"), row(2_000_005, image="5")],
        counted("which has no image", "image", rejects=2, records=1),
    )
    # max_samples samples reference groups whole: row 7 reuses row 1's image (was: row 7 kept, its image not).
    mmb(
        "max_samples_keeps_reference_group",
        [row(1), row(7, image="1")],
        {"kind": "ok", "records": 2, "cfg": {"max_samples": 1}},
    )
    # Reject reasons hold no object reprs (Pillow's message names the BytesIO at its address).
    mmb(
        "unidentified_image_stable_reason",
        [row(1), row(2, image=b64(b"\x00" * 300))],
        rej("not a known image format", "image"),
    )

    # --- MMBench HF layout (lmms-lab/MMBench_EN): image cells, paths, nulls ---
    mmb_cols = [
        "index",
        "question",
        "hint",
        "A",
        "B",
        "C",
        "D",
        "answer",
        "category",
        "image",
        "source",
        "L2-category",
        "comment",
        "split",
    ]
    mmb_feats = datasets.Features(
        {
            c: (
                datasets.Value("int64")
                if c == "index"
                else datasets.Image()
                if c == "image"
                else datasets.Value("string")
            )
            for c in mmb_cols
        }
    )

    def hrow(_index, **kw):
        r = {c: None for c in mmb_cols}
        r.update(
            {
                "index": _index,
                "question": f"Q{_index}?",
                "A": "x",
                "B": "y",
                "answer": "A",
                "category": "c",
                "L2-category": "l2",
                "split": "dev",
                "image": {"bytes": jpeg((_index * 30 % 255, 5, 5)), "path": None},
            }
        )
        r.update(kw)
        return r

    def mmb_hf(name, rows, expect, **kw):
        hf(name, "mmbench", rows, mmb_feats, expect, config="default", split="dev", **kw)

    mmb_hf("mmbench_hf_image_null", [hrow(1), hrow(2, image=None)], rej("referenced but empty", "image"))
    mmb_hf(
        "mmbench_hf_image_path_absolute_outside",
        [hrow(1), hrow(2, image={"bytes": None, "path": "/etc/hostname"})],
        rej("resolves outside the snapshot folder", "image"),
    )
    mmb_hf(
        "mmbench_hf_image_path_dotdot",
        [hrow(1), hrow(2, image={"bytes": None, "path": "../outside/a.jpg"})],
        rej("resolves outside the snapshot folder", "image"),
        outside={"a.jpg": jpeg()},
    )
    mmb_hf(
        "mmbench_hf_image_path_inside_ok",
        [hrow(1), hrow(2, image={"bytes": None, "path": "images/b.jpg"})],
        {"kind": "ok", "records": 2},
        extra={"images/b.jpg": jpeg((1, 2, 3))},
    )
    mmb_hf(
        "mmbench_hf_image_path_symlink_out",
        [hrow(1), hrow(2, image={"bytes": None, "path": "images/link.jpg"})],
        {
            **rej("resolves outside the snapshot folder", "image"),
            "symlinks": {"raw/images/link.jpg": "../../outside/a.jpg"},
        },
        extra={"images/keep.txt": "x"},
        outside={"a.jpg": jpeg()},
    )
    mmb_hf("mmbench_hf_answer_null", [hrow(1), hrow(2, answer=None)], rej("empty answer", "answer"))
    mmb_hf("mmbench_hf_option_gap", [hrow(1), hrow(2, B=None, C="z")], rej("option B is empty", "B"))

    # --- MMBench-Lite (lmms-lab/LMMs-Eval-Lite, config mmbench_en_dev, split lite) ---
    def lite(name, rows, expect):
        hf(
            name,
            "mmbench_lite",
            rows,
            mmb_feats,
            {**expect, "cfg": {"subset": "mmbench_en_dev"}},
            config="mmbench_en_dev",
            split="lite",
        )

    lite("lite_image_null", [hrow(1), hrow(2, image=None)], rej("referenced but empty", "image"))
    lite("lite_index_null", [hrow(1), hrow(2, index=None)], rej("empty", "index"))
    lite("lite_answer_not_letter", [hrow(1), hrow(2, answer="yes")], rej("not one of the options", "answer"))
    lite("lite_option_gap", [hrow(1), hrow(2, A=None)], rej("option A is empty but option B is filled", "A"))
    lite(
        "lite_image_bytes_garbage",
        [hrow(1), hrow(2, image={"bytes": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "path": None})],
        rej("undecodable image", "image"),
    )
    lite("lite_duplicate_index", [hrow(1), hrow(1, question="Other?")], rej("duplicate id 1", "id"))

    # --- MMMU ---
    mrow, mfeats = m.mmmu_row, m.mmmu_features()
    hf(
        "mmmu_answer_empty_validation",
        "mmmu",
        [mrow(), mrow(id="validation_Art_2", answer="")],
        mfeats,
        rej("empty answer in the labelled split", "answer"),
        config="Art",
    )
    hf("mmmu_id_null", "mmmu", [mrow(), mrow(id=None)], mfeats, rej("empty", "id"), config="Art")
    hf(
        "mmmu_open_answer_list_with_none",
        "mmmu",
        [mrow(), mrow(id="validation_Art_2", question_type="open", options="[]", answer="['3', None]")],
        mfeats,
        rej("only text or numbers", "answer"),
        config="Art",
    )
    hf(
        "mmmu_options_nested_list",
        "mmmu",
        [mrow(), mrow(id="validation_Art_2", options="[['a'], 'b']")],
        mfeats,
        rej("not a literal list of strings", "options"),
        config="Art",
    )
    hf(
        "mmmu_question_type_unknown",
        "mmmu",
        [mrow(), mrow(id="validation_Art_2", question_type="essay")],
        mfeats,
        rej("expected 'multiple-choice' or 'open'", "question_type"),
        config="Art",
    )
    hf(
        "mmmu_image_path_outside",
        "mmmu",
        [mrow(), mrow(id="validation_Art_2", image_1={"bytes": None, "path": "/etc/hostname"})],
        mfeats,
        rej("resolves outside the snapshot folder", "image_1"),
        config="Art",
    )
    hf(
        "mmmu_placeholder_in_options_missing",
        "mmmu",
        [mrow(), mrow(id="validation_Art_2", options="['<image 2>', 'b']")],
        mfeats,
        rej("image_2 is referenced but empty", "image_2"),
        config="Art",
    )

    # --- TextVQA ---
    img = {"bytes": jpeg(), "path": None}
    tfeats = m.textvqa_features()

    def tv(_qid, **kw):
        return {"question_id": _qid, "question": "q?", "image": img, "answers": ["a"] * 10, **kw}

    str_feats = datasets.Features({**tfeats, "answers": datasets.Value("string")})
    hf(
        "textvqa_answers_string",
        "textvqa",
        [{**tv(1), "answers": "abcdefghij"}, {**tv(2), "answers": "abcdefghij"}],
        str_feats,
        err(
            r"validation-00000-of-00001\.parquet: split 'validation' yields no records: 2 rows read, "
            r"2 rejected \(2 expected a list of N answers, got text\)$"
        ),
    )
    hf(
        "textvqa_answers_all_empty",
        "textvqa",
        [tv(1), tv(2, answers=[""] * 10)],
        tfeats,
        rej("all 10 human answers are empty", "answers"),
    )
    hf(
        "textvqa_answers_all_whitespace",
        "textvqa",
        [tv(1), tv(2, answers=[" ", "\t"] * 5)],
        tfeats,
        rej("all 10 human answers are empty", "answers"),
    )
    hf(
        "textvqa_answers_none",
        "textvqa",
        [tv(1), tv(2, answers=[None] * 10)],
        tfeats,
        rej("expected text, got null", "answers[0]"),
    )
    hf("textvqa_question_id_null", "textvqa", [tv(1), tv(None)], tfeats, rej("empty", "question_id"))
    hf("textvqa_image_null", "textvqa", [tv(1), tv(2, image=None)], tfeats, rej("referenced but empty", "image"))
    hf(
        "textvqa_image_path_outside",
        "textvqa",
        [tv(1), tv(2, image={"bytes": None, "path": "../outside/a.jpg"})],
        tfeats,
        rej("resolves outside the snapshot folder", "image"),
        outside={"a.jpg": jpeg()},
    )
    hf(
        "textvqa_image_path_missing",
        "textvqa",
        [tv(1), tv(2, image={"bytes": None, "path": "nope.jpg"})],
        tfeats,
        rej("not found in the snapshot folder", "image"),
    )
    hf("textvqa_question_empty", "textvqa", [tv(1), tv(2, question="  ")], tfeats, rej("empty question", "question"))
    # A parquet page that breaks while streaming: one line naming the source, never a raw Arrow/OS error.
    table = pa.Table.from_pylist(
        [
            {
                "question_id": i,
                "question": f"question {i}? " * 8,
                "answers": ["a"] * 10,
                "image": {"bytes": jpeg(), "path": None},
            }
            for i in range(120)
        ]
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=40, compression="NONE")
    data = bytearray(buf.getvalue())
    pf = pq.ParquetFile(io.BytesIO(bytes(data)))
    off = pf.metadata.row_group(2).column(1).data_page_offset
    data[off : off + 40] = b"\xff" * 40
    case(
        "textvqa_streaming_corrupt_page",
        {"adapter": "textvqa", "splits": ["validation"], "cfg": {"streaming": True}, **err("unreadable")},
        {"data/validation-00000-of-00001.parquet": bytes(data)},
    )

    # --- LLaVA ---
    def turns(*pairs):
        return [{"from": f, "value": v} for f, v in pairs]

    llava("llava_image_list", [conv(1, "a.jpg"), conv(2, ["a.jpg"])], rej("expected a file name, got a list", "image"))
    llava("llava_image_number", [conv(1, "a.jpg"), conv(2, 7)], rej("expected a file name, got a number", "image"))
    llava("llava_image_null", [conv(1, "a.jpg"), conv(2, None)], rej("expected a file name, got null", "image"))
    llava("llava_image_empty_string", [conv(1, "a.jpg"), conv(2, "")], rej("empty image name", "image"))
    llava(
        "llava_human_value_null",
        [conv(1, "a.jpg"), {**conv(2, "a.jpg"), "conversations": turns(("human", None), ("gpt", "A."))}],
        rej("expected text, got null", "conversations[0].value"),
    )
    llava(
        "llava_starts_with_gpt",
        [
            conv(1, "a.jpg"),
            {**conv(2, "a.jpg"), "conversations": turns(("gpt", "Hi."), ("human", "Q?"), ("gpt", "A."))},
        ],
        rej("expected 'human', got 'gpt'", "conversations[0].from"),
    )
    llava(
        "llava_gpt_value_number",
        [conv(1, "a.jpg"), {**conv(2, "a.jpg"), "conversations": turns(("human", "Q?"), ("gpt", 42))}],
        rej("expected text, got a number", "conversations[1].value"),
    )
    llava(
        "llava_id_null",
        [conv(1, "a.jpg"), {**conv(2, "a.jpg"), "id": None}],
        rej("expected text or an integer, got null", "id"),
    )
    llava(
        "llava_turn_not_object",
        [conv(1, "a.jpg"), {**conv(2, "a.jpg"), "conversations": ["Q?", "A."]}],
        rej("expected an object, got text", "conversations[0]"),
    )
    llava(
        "llava_symlink_loop",
        [conv(1, "a.jpg"), conv(2, "loop.jpg")],
        {
            **rej("is a symlink loop", "image"),
            "symlinks": {"raw/images/loop.jpg": "loop2.jpg", "raw/images/loop2.jpg": "loop.jpg"},
        },
    )
    llava(
        "llava_symlink_outside",
        [conv(1, "a.jpg"), conv(2, "link.jpg")],
        {**rej("resolves outside its image root", "image"), "symlinks": {"raw/images/link.jpg": "../../outside/a.jpg"}},
        outside={"a.jpg": jpeg()},
    )

    # --- download from a local folder: links that leave it are named errors, links inside are copied ---
    def dl(name, kind, files, expect, symlinks, outside=None):
        case(name, {"kind": kind, "symlinks": symlinks, **expect}, files, outside)

    tsv = m.tsv_text([row(1)])
    dl(
        "download_symlink_outside",
        "download_error",
        {"MMBench_DEV_EN.tsv": tsv},
        {"match": "symlink extra.tsv points outside the source folder"},
        {"raw/extra.tsv": "../outside/secret.tsv"},
        outside={"secret.tsv": "private\n"},
    )
    dl(
        "download_dir_symlink_outside",
        "download_error",
        {"MMBench_DEV_EN.tsv": tsv},
        {"match": "symlink more points outside the source folder"},
        {"raw/more": "../outside"},
        outside={"x.tsv": "x\n"},
    )
    dl(
        "download_symlink_loop",
        "download_error",
        {"MMBench_DEV_EN.tsv": tsv},
        {"match": "symlink a.tsv loops"},
        {"raw/a.tsv": "b.tsv", "raw/b.tsv": "a.tsv"},
    )
    dl(
        "download_symlink_dangling",
        "download_error",
        {"MMBench_DEV_EN.tsv": tsv},
        {"match": "symlink gone.tsv points at nothing"},
        {"raw/gone.tsv": "missing.tsv"},
    )
    dl(
        "download_dir_symlink_to_parent",
        "download_error",
        {"sub/MMBench_DEV_EN.tsv": tsv},
        {"match": "symlink sub/up points at a folder that contains it"},
        {"raw/sub/up": ".."},
    )
    dl(
        "download_symlink_inside_ok",
        "download_ok",
        {"data/MMBench_DEV_EN.tsv": tsv},
        {"files": ["MMBench_DEV_EN.tsv", "data/MMBench_DEV_EN.tsv"]},
        {"raw/MMBench_DEV_EN.tsv": "data/MMBench_DEV_EN.tsv"},
    )
