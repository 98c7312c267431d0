"""Is our generator slower after cornac's TIGER trained in the same process? Times our
training steps on cornac's batches in a fresh process, then again (twice) after cornac has
trained. Uses bench_vs_cornac.py's pieces and cornac's residual k-means IDs (fast stage 1).

    python benchmarks/probe_vs_cornac_order.py      # about 5 minutes on 2 cores
"""
import time, types
import numpy as np, torch
import torch.optim.optimizer as torch_optimizer
import bench_vs_cornac as B

args = types.SimpleNamespace(data="dataset/Beauty", modalities=["text", "category"], users=2000,
    test_users=8, warmup=3, steps=20, tokenizer_epochs=2, ids="cornac", history=20, batch=256,
    beam=20, eval_batch=256, d_model=128, d_ff=1024, heads=6, d_head=64, layers=4,
    sim_buckets=100, seed=0, length_buckets="auto")
torch.manual_seed(0)
seqs, content = B.load_data(args)
n_items = len(content) - 1
order = np.random.default_rng(0).permutation(len(seqs))
train_seqs = [seqs[u][:-2] for u in order[: args.users]]
args.train_samples = sum(max(len(s) - 1, 0) for s in train_seqs)
cfg = B.our_config(args)
tiger = B.CornacTIGER(tokenizer="rkmeans", rqvae_num_levels=3, rqvae_codebook_size=256,
    d_model=128, d_ff=1024, num_heads=6, d_kv=64, num_enc_layers=4, num_dec_layers=4,
    dropout=0.1, max_len=20, n_epochs=1, batch_size=256, n_beams=20, device="cpu", seed=0)
tiger.device_, tiger.num_items = "cpu", n_items
codes = tiger._tokenize(torch, content[1:].clone())
tiger._build_semantic_ids(codes)
level_sizes = list(tiger.level_sizes)
item_codes = torch.cat([torch.full((1, len(level_sizes)), -1), torch.as_tensor(tiger.sid_table, dtype=torch.long)])
uids = np.concatenate([[u] * len(s) for u, s in enumerate(train_seqs)]).astype(int)
iids = np.concatenate(train_seqs).astype(int)
starts = np.cumsum([0] + [len(s) for s in train_seqs])
tiger.train_set = types.SimpleNamespace(uir_tuple=(uids, iids, np.ones(len(iids))),
    sessions={u: list(range(starts[u], starts[u + 1])) for u in range(len(train_seqs))})
n = args.warmup + args.steps
record = []
real = B.recom_tiger.session_seq_iter
for b in real(tiger.train_set, pad_index=n_items, batch_size=256, max_len=20, n_sample=0, rng=np.random.RandomState(0), shuffle=True):
    record.append(b)
    if len(record) == n:
        break
tiger.pad_idx = n_items
batches = [B.interaction([h[h != n_items] for h in hist], out, 20) for _, hist, out in record]
samples = sum(len(b[2]) for b in record[args.warmup:])

def ours(tag):
    m = B.OurStage2(cfg, args, item_codes, level_sizes)
    m.run(batches[: args.warmup])
    t = time.perf_counter(); m.run(batches[args.warmup:]); dt = time.perf_counter() - t
    print(f"{tag}: ours {samples / dt:.1f} samples/s", flush=True)

ours("fresh process (before cornac)")
stamps = []
hook = torch_optimizer.register_optimizer_step_post_hook(lambda *_: stamps.append(time.perf_counter()))
with B.cornac_batches(n, []):
    tiger._fit_seq2seq(torch, None)
hook.remove()
print(f"cornac {samples / (stamps[n - 1] - stamps[args.warmup - 1]):.1f} samples/s", flush=True)
ours("after cornac trained in this process")
ours("again")
