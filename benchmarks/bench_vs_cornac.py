"""Our TIGER against cornac's TIGER (cornac 3.0.1, benchmark-only), side by side on Beauty.

    python benchmarks/bench_vs_cornac.py [--data dataset/Beauty] [--modalities text category]
        [--users 2000] [--test_users 200] [--warmup 3] [--steps 30] [--tokenizer_epochs 20]
        [--ids cornac|ours] [--d_model 128 --d_ff 1024 --heads 6 --d_head 64 --layers 4]
        [--batch 256 --history 20 --beam 20 --eval_batch 256] [--amp] [--out docs/results/speed]

One process, one run, CPU, torch threads at their default. Writes ``<out>/vs_cornac.json``
and prints figure, ours, cornac, ours/cornac. Data: each user's items by timestamp, the last
two (valid, test) kept out of training; a sample is (up to ``history`` previous items, next
item). Content: the standardised ``modalities`` concatenated by our ``load_item_features``.

Whose code runs (cornac's is called, never copied):

* tokenizer: cornac's ``TIGER._tokenize`` (k-means init, RQ-VAE epochs, dead-code restarts,
  read-out); ours: our TIGER's stage-1 methods (its Config) in a loop mirroring
  ``TwoStageTrainer.fit_tokenizer``. cornac's ``_build_semantic_ids`` on one side's codes
  (``--ids``) gives the ID table, prefix tree and level sizes both sides then use.
* training: cornac's ``TIGER._fit_seq2seq`` (``TIGERSeq2Seq``, AdamW, ``enc_token_table``
  batches) fed by its ``session_seq_iter`` over a stand-in train set, its batches
  materialised before the first step and cut at ``warmup + steps``, timed by an
  optimizer-step hook. Ours: ``GenerativeRecommender.calculate_loss`` (length buckets) on
  the same batches in the same order, with our trainer's AdamW groups, clipping, schedule.
* beam search: cornac's ``TIGER.score`` (``generate_beam``, one user per call); ours
  ``GenerativeRecommender.full_sort_predict``, batched and one user per call.
* similarity attention: our generator built as BBQRec builds it, stepped alternately with
  the plain one over the same batches (``_timing.alternating_samples_per_s``).
* ``--amp``: ours again under bfloat16 autocast (``enable_amp: True``), a fresh generator on
  the same batches, and the similarity/plain ratio under it, and the batched beam search
  under it (``eval_amp_dtype: bfloat16``); cornac has no such switch, so its figures stay
  float32.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import json
import math
import os
import platform
import resource
import sys
import time
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import torch
import torch.optim.optimizer as torch_optimizer
from torch.nn.utils import clip_grad_norm_

import cornac
from cornac.models.tiger import TIGER as CornacTIGER
from cornac.models.tiger import recom_tiger

from _timing import alternating_samples_per_s
from recbole_bbq.allocator import keep_freed_memory
from recbole_bbq.config import Config
from recbole_bbq.data.features import load_item_features
from recbole_bbq.model.bbqrec import BBQRec
from recbole_bbq.model.generative import GenerativeRecommender
from recbole_bbq.model.tiger import TIGER
from recbole_bbq.modules.beam_search import SemanticIDTrie
from recbole_bbq.modules.length_buckets import resolve_length_buckets
from recbole_bbq.modules.similarity_attention import SimilarityAttention
from recbole_bbq.trainer.schedule import build_scheduler, decay_parameter_groups
from recbole.data.interaction import Interaction  # after recbole_bbq: its compat patches first

def our_config(args) -> Config:
    """Our TIGER's configuration exactly as a run gets it (:class:`recbole_bbq.config.Config`:
    RecBole's and the plugin's defaults, GenerativeRecommender.yaml, TIGER.yaml), with this
    benchmark's sizes on top."""
    data_path, name = os.path.split(os.path.normpath(args.data))
    return Config("TIGER", name, config_dict={
        "data_path": data_path, "use_gpu": False, "state": "WARNING",
        "d_model": args.d_model, "d_ff": args.d_ff, "n_heads": args.heads, "d_head": args.d_head,
        "n_encoder_layers": args.layers, "n_decoder_layers": args.layers,
        "beam_size": args.beam, "train_batch_size": args.batch,
        "modalities": list(args.modalities), "seed": args.seed})


def load_data(args):
    """Item tokens (ours: id 1.., cornac: id 0..), user sequences and the content matrix."""
    name = os.path.basename(os.path.normpath(args.data))
    rows = defaultdict(list)
    items = {}
    with open(os.path.join(args.data, f"{name}.inter")) as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            item = items.setdefault(row["item_id:token"], len(items))  # cornac id
            rows[row["user_id:token"]].append((float(row["timestamp:float"]), item))
    seqs = [[i for _, i in sorted(r, key=lambda x: x[0])] for r in rows.values()]
    tokens = ["[PAD]", *items]
    dataset = SimpleNamespace(field2id_token={"item_id": tokens}, iid_field="item_id")
    feats = load_item_features({"data_path": args.data, "dataset": name}, dataset,
                               list(args.modalities), standardized=True)
    content = torch.cat([f.values for f in feats.values()], dim=1)  # as our TIGER does
    return seqs, content


class OurTokenizer:
    """Our TIGER's stage-1 methods on a stand-in (no RecBole dataset needed)."""
    tokenizer_init = TIGER.tokenizer_init
    tokenizer_batches = TIGER.tokenizer_batches
    calculate_tokenizer_loss = TIGER.calculate_tokenizer_loss
    nearest_codes = TIGER.nearest_codes

    def __init__(self, content, cfg):
        self.content, self.n_items, self.seed = content, len(content), int(cfg["seed"])
        self.rqvae = TIGER.build_rqvae(content.shape[1], cfg)
        self.tokenizer_batch_size = int(cfg["tokenizer_batch_size"])
        self.kmeans_init_enabled = bool(cfg["kmeans_init"])

    def fit(self, cfg, epochs: int):
        """As ``TwoStageTrainer.fit_tokenizer``: k-means init, epochs, then the codes."""
        opt = torch.optim.AdamW(self.rqvae.parameters(), lr=cfg["tokenizer_learning_rate"],
                                weight_decay=cfg["tokenizer_weight_decay"] or 0.0)
        self.rqvae.train()
        self.tokenizer_init(None)
        for _ in range(epochs):
            for batch in self.tokenizer_batches(None):
                opt.zero_grad()
                losses = self.calculate_tokenizer_loss(batch)
                losses["loss"].backward()
                clip_grad_norm_(self.rqvae.parameters(), **cfg["clip_grad_norm"])
                opt.step()
                _ = {k: float(v.detach()) for k, v in losses.items()}
        self.rqvae.eval()
        return self.nearest_codes()


class OurStage2:
    """Our generative models' stage-2 code (``GenerativeRecommender`` and BBQRec's
    similarity inputs) on a stand-in holding the ID table, prefix tree and generator."""
    ITEM_SEQ, ITEM_SEQ_LEN, POS_ITEM_ID = "item_id_list", "item_length", "item_id"
    _length_buckets = GenerativeRecommender._length_buckets
    calculate_loss = GenerativeRecommender.calculate_loss
    full_sort_predict = GenerativeRecommender.full_sort_predict
    build_generator = GenerativeRecommender.build_generator
    generator_attention_kwargs = BBQRec.generator_attention_kwargs

    def __init__(self, cfg, args, item_codes, level_sizes, item_vectors=None, amp=False):
        self.config, self.max_seq_length, self.beam_size = cfg, args.history, args.beam
        self.amp = amp
        self.item_codes, self.n_items = item_codes, len(item_codes)
        self.trie = SemanticIDTrie(item_codes, level_sizes)
        self.length_buckets = resolve_length_buckets(args.length_buckets, "cpu")
        self.similarity_attention = item_vectors is not None
        self.item_vectors, self.sim_buckets = item_vectors, args.sim_buckets
        extra = {}
        if self.similarity_attention:  # as BBQRec.build_generator
            extra["attention_cls"] = functools.partial(SimilarityAttention, n_buckets=args.sim_buckets)
        torch.manual_seed(args.seed)
        self.generator = self.build_generator(list(level_sizes), **extra)
        groups = decay_parameter_groups([self.generator], cfg["weight_decay"], cfg["weight_decay_scope"])
        self.opt = torch.optim.AdamW(groups, lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"])
        steps_per_epoch = math.ceil(args.train_samples / args.batch)
        self.sched = build_scheduler(self.opt, cfg, steps_per_epoch, int(cfg["epochs"]))[0]

    def run(self, batches) -> None:
        for batch in batches:
            self.step(batch)

    def step(self, interaction) -> None:
        """One optimizer step as RecBole's ``_train_epoch`` plus our recipe runs it."""
        self.generator.train()
        self.opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.amp):
            loss = self.calculate_loss(interaction)
        _ = loss.item()
        loss.backward()
        clip_grad_norm_(self.generator.parameters(), **self.config["clip_grad_norm"])
        self.opt.step()
        if self.sched is not None:
            self.sched.step()


def interaction(histories, targets=None, width=20) -> Interaction:
    """RecBole's batch: right-padded internal ids (cornac id + 1), lengths, next item."""
    seq = torch.zeros(len(histories), width, dtype=torch.long)
    for r, h in enumerate(histories):
        seq[r, : len(h)] = torch.as_tensor(h, dtype=torch.long) + 1
    data = {"item_id_list": seq, "item_length": torch.tensor([len(h) for h in histories])}
    if targets is not None:
        data["item_id"] = torch.as_tensor(np.asarray(targets), dtype=torch.long) + 1
    return Interaction(data)


@contextlib.contextmanager
def cornac_batches(n_batches: int, record: list):
    """cornac's own ``session_seq_iter``, run (another pass, reshuffled by cornac, when the
    users run out) until ``n_batches`` batches and materialised before the first step."""
    real = recom_tiger.session_seq_iter

    def limited(*a, **kw):
        while len(record) < n_batches:
            before = len(record)
            record.extend(b for _, b in zip(range(n_batches - len(record)), real(*a, **kw)))
            if len(record) == before:
                raise SystemExit("no training samples: raise --users")
        return iter(record)

    recom_tiger.session_seq_iter = limited
    try:
        yield
    finally:
        recom_tiger.session_seq_iter = real


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def warm_up_kernels(content, cfg) -> None:
    """A few untimed RQ-VAE steps, so the first timed tokenizer does not pay the process's
    one-time start-up costs (thread pool, kernel selection) alone."""
    rqvae = TIGER.build_rqvae(content.shape[1], cfg)
    rqvae.kmeans_init(content[1:2049], seed=0)
    for _ in range(2):
        rqvae(content[1:1025])["loss"].backward()
    torch.cdist(content[:1024, :32], content[:256, :32]).argmin(1)


def timed(fn):
    """``(wall seconds, result)`` of ``fn()``."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="dataset/Beauty")
    p.add_argument("--modalities", nargs="+", default=["text", "category"])
    p.add_argument("--users", type=int, default=2000, help="users whose sequences train")
    p.add_argument("--test_users", type=int, default=200, help="users timed in beam search")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    p.add_argument("--steps", type=int, default=30, help="timed training steps")
    p.add_argument("--tokenizer_epochs", type=int, default=20)
    p.add_argument("--ids", choices=["cornac", "ours"], default="cornac",
                   help="whose tokenizer's codes make the (shared) semantic IDs")
    for flag, default in [("history", 20), ("batch", 256), ("beam", 20), ("eval_batch", 256),
                          ("d_model", 128), ("d_ff", 1024), ("heads", 6), ("d_head", 64),
                          ("layers", 4), ("sim_buckets", 100), ("seed", 0)]:
        p.add_argument(f"--{flag}", type=int, default=default)
    p.add_argument("--length_buckets", default="auto")
    p.add_argument("--amp", action="store_true", help="also time ours under bfloat16 autocast")
    p.add_argument("--out", default="docs/results/speed")
    args = p.parse_args(argv)
    if args.warmup < 1:
        p.error("--warmup must be >= 1 (the timed window starts after a step)")
    torch.manual_seed(args.seed)
    print(f"torch {torch.__version__}, cornac {cornac.__version__}, "
          f"threads {torch.get_num_threads()}, cpu {cpu_model()}", flush=True)
    run_start = time.perf_counter()

    seqs, content = load_data(args)
    n_items = len(content) - 1
    order = np.random.default_rng(args.seed).permutation(len(seqs))
    train_seqs = [seqs[u][:-2] for u in order[: args.users]]
    test = [seqs[u] for u in order[: args.test_users]]
    args.train_samples = sum(max(len(s) - 1, 0) for s in train_seqs)
    cfg = our_config(args)
    # as a run of ours does; process-wide, so cornac's side gets the same allocator
    freed_memory_kept = bool(cfg["keep_freed_memory"]) and keep_freed_memory()

    # ---- stage 1: the tokenizers, same standardised content, same epochs and sizes
    tiger = CornacTIGER(
        tokenizer="rqvae", feature_standardize=True, rqvae_latent_dim=int(cfg["codebook_dim"]),
        rqvae_hidden_dims=tuple(cfg["rqvae_hidden_dims"]), rqvae_num_levels=int(cfg["n_levels"]),
        rqvae_codebook_size=int(cfg["codebook_size"]), rqvae_beta=float(cfg["commitment"]),
        rqvae_n_epochs=args.tokenizer_epochs, rqvae_batch_size=int(cfg["tokenizer_batch_size"]),
        rqvae_learning_rate=float(cfg["tokenizer_learning_rate"]), d_model=args.d_model,
        d_ff=args.d_ff, num_heads=args.heads, d_kv=args.d_head, num_enc_layers=args.layers,
        num_dec_layers=args.layers, dropout=float(cfg["dropout_prob"]), max_len=args.history,
        n_epochs=1, batch_size=args.batch, n_beams=args.beam, device="cpu", seed=args.seed)
    tiger.device_, tiger.num_items = "cpu", n_items
    warm_up_kernels(content, cfg)
    torch.manual_seed(args.seed)
    cornac_tok_s, cornac_codes = timed(lambda: tiger._tokenize(torch, content[1:].clone()))
    torch.manual_seed(args.seed)
    ours_tok = OurTokenizer(content, cfg)
    ours_tok_s, our_codes = timed(lambda: ours_tok.fit(cfg, args.tokenizer_epochs))
    print(f"tokenizer ({args.tokenizer_epochs} epochs): cornac {cornac_tok_s:.1f} s, "
          f"ours {ours_tok_s:.1f} s", flush=True)

    tiger._build_semantic_ids(cornac_codes if args.ids == "cornac" else our_codes)
    level_sizes = list(tiger.level_sizes)
    item_codes = torch.cat([torch.full((1, len(level_sizes)), -1),
                            torch.as_tensor(tiger.sid_table, dtype=torch.long)])
    with torch.no_grad():  # BBQRec's item_vectors: frozen stage-1 vectors, row 0 zero
        vectors = ours_tok.rqvae.quantizer(ours_tok.rqvae.encoder(content)).quantized
    vectors[0] = 0

    # ---- stage 2: generator training on cornac's batches
    uids = np.concatenate([[u] * len(s) for u, s in enumerate(train_seqs)]).astype(int)
    iids = np.concatenate(train_seqs).astype(int)
    starts = np.cumsum([0] + [len(s) for s in train_seqs])
    tiger.train_set = SimpleNamespace(
        uir_tuple=(uids, iids, np.ones(len(iids))),
        sessions={u: list(range(starts[u], starts[u + 1])) for u in range(len(train_seqs))})
    n_batches, record, stamps = args.warmup + args.steps, [], []
    hook = torch_optimizer.register_optimizer_step_post_hook(
        lambda *_: stamps.append(time.perf_counter()))
    torch.manual_seed(args.seed)
    try:
        with cornac_batches(n_batches, record):
            tiger._fit_seq2seq(torch, None)
    finally:
        hook.remove()
    timed_samples = sum(len(b[2]) for b in record[args.warmup:])
    if timed_samples < args.steps * args.batch:
        print(f"note: timed batches hold {timed_samples} samples, not {args.steps} x "
              f"{args.batch} (the users ran out: raise --users)", flush=True)
    cornac_train = timed_samples / (stamps[n_batches - 1] - stamps[args.warmup - 1])
    print(f"train: cornac {cornac_train:.1f} samples/s", flush=True)

    batches = [interaction([h[h != tiger.pad_idx] for h in hist], out, args.history)
               for _, hist, out in record]
    plain = OurStage2(cfg, args, item_codes, level_sizes)
    plain.run(batches[: args.warmup])
    ours_train = timed_samples / timed(lambda: plain.run(batches[args.warmup:]))[0]
    print(f"train: ours {ours_train:.1f} samples/s", flush=True)
    sim = OurStage2(cfg, args, item_codes, level_sizes, item_vectors=vectors)
    sim.run(batches[: args.warmup])
    alt = alternating_samples_per_s({"plain": plain.step, "similarity": sim.step},
                                    batches[args.warmup:])
    sim_ratio = alt["plain"] / alt["similarity"]
    print(f"train: similarity/plain step time {sim_ratio:.2f}", flush=True)
    amp_figures = {}
    if args.amp:
        plain16 = OurStage2(cfg, args, item_codes, level_sizes, amp=True)
        plain16.run(batches[: args.warmup])
        ours16 = timed_samples / timed(lambda: plain16.run(batches[args.warmup:]))[0]
        sim16 = OurStage2(cfg, args, item_codes, level_sizes, item_vectors=vectors, amp=True)
        sim16.run(batches[: args.warmup])
        alt16 = alternating_samples_per_s({"plain": plain16.step, "similarity": sim16.step},
                                          batches[args.warmup:])
        # ours16 is timed alone, as ours_train was; the two alternated give a fairer ratio
        alt_amp = alternating_samples_per_s({"float32": plain.step, "bfloat16": plain16.step},
                                            batches[args.warmup:])
        amp_ratio = alt_amp["bfloat16"] / alt_amp["float32"]
        amp_figures = {"train_samples_per_s_bf16_autocast": {"ours": ours16, "cornac": cornac_train}}
        sim16_ratio = alt16["plain"] / alt16["similarity"]
        print(f"train: ours under bf16 autocast {ours16:.1f} samples/s, "
              f"{amp_ratio:.2f}x float32 alternated step by step, "
              f"similarity/plain step time {sim16_ratio:.2f}", flush=True)

    # ---- beam search on the last item of each test user, trained weights of both
    hists = [s[:-1][-args.history:] for s in test]
    tiger.score(0, hists[0])  # warm-up
    cornac_one = len(hists) / timed(lambda: [tiger.score(0, h) for h in hists])[0]
    plain.full_sort_predict(interaction(hists[:8], width=args.history))  # warm-up
    chunks = [interaction(hists[i : i + args.eval_batch], width=args.history)
              for i in range(0, len(hists), args.eval_batch)]
    ours_batched = len(hists) / timed(lambda: [plain.full_sort_predict(c) for c in chunks])[0]
    if args.amp:  # the search as eval_amp_dtype: bfloat16 runs it
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain.full_sort_predict(chunks[0])  # warm-up of the bfloat16 kernels
            ours_batched16 = len(hists) / timed(lambda: [plain.full_sort_predict(c) for c in chunks])[0]
        amp_figures["beam_users_per_s_bf16_autocast"] = {"ours": ours_batched16, "cornac": cornac_one}
        print(f"beam: ours under bf16 autocast {ours_batched16:.1f} users/s (batched)", flush=True)
    singles = [interaction([h], width=args.history) for h in hists]
    ours_one = len(hists) / timed(lambda: [plain.full_sort_predict(c) for c in singles])[0]
    print(f"beam: cornac {cornac_one:.1f}, ours {ours_batched:.1f} (batched), "
          f"{ours_one:.1f} (one at a time) users/s", flush=True)

    # ---- report
    figures = {
        "train_samples_per_s": {"ours": ours_train, "cornac": cornac_train},
        "beam_users_per_s": {"ours": ours_batched, "cornac": cornac_one},
        "beam_users_per_s_one_at_a_time": {"ours": ours_one, "cornac": cornac_one},
        "tokenizer_s": {"ours": ours_tok_s, "cornac": cornac_tok_s},
        **amp_figures,
    }
    ratios = {k: v["ours"] / v["cornac"] for k, v in figures.items()}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        **figures,
        "train_samples_per_s_ours_similarity": alt["similarity"],
        "similarity_over_plain_step_time": sim_ratio,
        **({"similarity_over_plain_step_time_bf16_autocast": sim16_ratio,
            "ours_bf16_over_float32_alternated": amp_ratio} if args.amp else {}),
        "ratios": ratios,
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, {platform.platform()}",
        "settings": {
            "torch": torch.__version__, "cornac": cornac.__version__,
            "threads": torch.get_num_threads(), **vars(args),
            "items": n_items, "content_dim": content.shape[1], "standardized": True,
            "level_sizes": level_sizes, "ids_from": args.ids,
            "colliding_items_before_extra_level": int((tiger.sid_table[:, -1] > 0).sum()),
            "timed_train_samples": timed_samples,
            "length_buckets": plain.length_buckets,
            "rqvae": {k: cfg[k] for k in ("rqvae_hidden_dims", "codebook_dim", "n_levels", "codebook_size",
                                          "commitment", "tokenizer_batch_size", "tokenizer_learning_rate")},
            "ours_dead_code_reset_steps": cfg["dead_code_reset"],
            "keep_freed_memory": freed_memory_kept,
            "code_paths": "cornac: its real TIGER._tokenize, _build_semantic_ids, _fit_seq2seq "
                          "(session_seq_iter batches), score; ours: TIGER stage-1 methods, "
                          "GenerativeRecommender.calculate_loss / full_sort_predict",
            "optimizer": {"ours": f"AdamW lr {cfg['learning_rate']} wd {cfg['weight_decay']} "
                                  f"({cfg['weight_decay_scope']}), clip {cfg['clip_grad_norm']}, "
                                  f"{cfg['lr_scheduler']} schedule",
                          "cornac": f"AdamW lr {tiger.learning_rate} wd {tiger.weight_decay}, "
                                    f"no clipping, {tiger.lr_schedule}"},
            "cornac_attention": tiger.model.encoder.config._attn_implementation,
            "generator_params": {k: sum(x.numel() for x in m.parameters())
                                 for k, m in (("ours", plain.generator), ("cornac", tiger.model))},
            "peak_rss_mb": peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024,
            "wall_s": time.perf_counter() - run_start,
        },
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "vs_cornac.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"\n{'figure':<34}{'ours':>12}{'cornac':>12}{'ours/cornac':>13}")
    for k, v in figures.items():
        print(f"{k:<34}{v['ours']:>12.2f}{v['cornac']:>12.2f}{ratios[k]:>13.2f}")
    print(f"{'similarity/plain step time (ours)':<34}{sim_ratio:>12.2f}\n"
          f"(tokenizer_s: seconds, lower is better; the rest: higher is better)\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
