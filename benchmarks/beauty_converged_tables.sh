#!/usr/bin/env bash
# Rebuild the converged-budget tables on Beauty (docs/RESULTS.md, "Converged-budget runs")
# from the committed run records in docs/results/beauty-converged/records/, without training:
# each record is adopted after its config is checked key by key against the command below.
# --no_training: a missing record stops the script with an error naming it; nothing trains.
#   bash benchmarks/beauty_converged_tables.sh CASE   (with the project's venv active; without CASE it lists the cases)
set -eu
C=benchmarks/configs/beauty_converged_cpu.yaml        # generative models
S=benchmarks/configs/sasrec_beauty_converged_cpu.yaml # RecBole's models
F=benchmarks/configs/generator_full_size.yaml         # the paper's generator size (overlay on C)
R=docs/results/beauty-converged/records
OUT=docs/results/beauty-converged
# the saved stage 1s the runs loaded: only compared with each record's config (no file is read)
TOK=saved/BBQRec-Beauty-Nov-23-2026_07-33-40-de03af-tokenizer.pth  # BBQRec's stage 1, shared
# BBQRec's 2-epoch stage 1s of 5 Dec, one per seed, under the 20-epoch cases below
BBQ_TOK_2020=saved/BBQRec-Beauty-Dec-05-2026_02-42-39-1fa13c-tokenizer.pth
BBQ_TOK_2021=saved/BBQRec-Beauty-Dec-05-2026_07-01-34-978f3b-tokenizer.pth
# the same seed-2020 command's stage 1 on another machine (5 Dec, 20:47; other IDs)
BBQ_TOK_2020_57E586=saved/BBQRec-Beauty-Dec-05-2026_20-47-19-57e586-tokenizer.pth
BBQ_TOK_2021_2BB80C=saved/BBQRec-Beauty-Dec-06-2026_05-37-05-2bb80c-tokenizer.pth  # the seed-2021 stage 1 of the defaults of 6 Dec
BBQ_TOK_2020_DCC1E5=saved/BBQRec-Beauty-Dec-06-2026_19-43-52-dcc1e5-tokenizer.pth  # bbqrec_sasrec_schedule's stage 1 (the same IDs as 1fa13c)
TIGER_TOK=saved/TIGER-Beauty-Nov-23-2026_08-01-01-bf81ed-tokenizer.pth  # TIGER's 150-epoch stage 1
# Table 2's GRU4Rec runs SASRec's recipe at peak rate 0.002 without weight decay (the recipe's
# 0.001 with decay 0.01 gave R@10 0.0579 against 0.0708; docs/RESULTS.md).
# Table 2's TIGER and BBQRec rows are their 20-epoch runs on the saved stage 1s, each filling
# its 75-minute budget; their 8-epoch runs stay in RESULTS.md, and BBQRec's 8-epoch run is the
# reference of the ablation tables (table3, table4), which use the 8-epoch recipe.
# BBQRec ties its output to its token embeddings since 5 Dec (tie_embeddings: True): the cases
# whose BBQRec-family runs trained untied pin tie_embeddings=False.
records() { local IFS=,; echo "$*"; }
# table2's LETTER stage-1 command (150 RQ-VAE epochs, utilisation read every 50, a 5-epoch
# collaborative SASRec), shared by the cases below that adopt such LETTER runs
LETTER_STAGE1="--set LETTER:tokenizer_epochs=150 --set LETTER:tokenizer_eval_step=50 --set LETTER:letter_cf_epochs=5"
# Table 2's RecBole models: their config file and recipe (GRU4Rec on SASRec's recipe at peak rate
# 0.002 without weight decay, a 10-epoch decay), shared by every case that adopts those runs
RECBOLE_TABLE2="--model_config GRU4Rec:$S --model_config SASRec:$S --set GRU4Rec:epochs=10 \
  --set GRU4Rec:time_budget_minutes=16 --set GRU4Rec:learning_rate=0.002 --set GRU4Rec:weight_decay=0 \
  --set SASRec:time_budget_minutes=75"
# TIGER's seed-2020 stage 1 of the paper-size 14-epoch runs (the twenty-first session's machine)
TIGER_TOK_011F2E=saved/TIGER-Beauty-Dec-07-2026_09-41-41-011f2e-tokenizer.pth
# BBQRec's generator reads a history as SASRec does since 6 Dec (docs/RESULTS.md,
# "BBQRec's generator defaults of 6 Dec")
# (properties/model/BBQRec.yaml: decoder_start last_item, input_norm True, history_tokens item);
# the cases whose BBQRec-family runs trained under the family's earlier values pin them, before
# their own settings, which therefore still win: before_6dec MODEL... prints the --set options
before_6dec() { local m; for m in "$@"; do
  echo "--set $m:decoder_start=bos --set $m:input_norm=False --set $m:history_tokens=levels"; done; }

# table2_current's runs of GRU4Rec, SASRec, TIGER and LETTER (two seeds, each on its saved stage
# 1) and their settings, shared by the Table 2 cases that differ only in BBQRec
T5=benchmarks/configs/tiger_letter_generator_cpu.yaml
TABLE2_OTHERS=($R/GRU4Rec-Beauty-Nov-24-2026_09-18-48-0446d7.json $R/GRU4Rec-Beauty-Dec-04-2026_22-07-03-34ba38.json
  $R/SASRec-Beauty-Dec-04-2026_21-38-47-5f6461.json $R/SASRec-Beauty-Dec-04-2026_22-21-37-e5d735.json
  $R/TIGER-Beauty-Dec-04-2026_04-52-12-2789bc.json $R/TIGER-Beauty-Dec-03-2026_23-06-52-3ec0cd.json
  $R/LETTER-Beauty-Dec-04-2026_19-48-37-5b9d70.json $R/LETTER-Beauty-Dec-04-2026_20-54-48-0d48f0.json)
table2_models() {
  python3 run_recbole_bbq.py --no_training --models=GRU4Rec,SASRec,TIGER,LETTER,BBQRec --dataset=Beauty --seeds=2020,2021 \
    $RECBOLE_TABLE2 \
    --model_config TIGER:$C,$T5 --model_config LETTER:$C,$T5 --model_config BBQRec:$C \
    --set TIGER@2020:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-04-2026_04-50-37-7fec8b-tokenizer.pth \
    --set TIGER@2021:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-03-2026_22-29-47-5e752e-tokenizer.pth \
    $LETTER_STAGE1 \
    --set LETTER@2020:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-04-2026_18-36-59-61cf6d-tokenizer.pth \
    --set LETTER@2021:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-04-2026_20-46-52-7e258a-tokenizer.pth "$@"
}

# the atomic-ID control (TIGER's generator on one level of private item tokens, read from the
# table benchmarks/atomic_ids.py writes; tied; BBQRec's recipe over $EPOCHS epochs, 20 unless
# set; seed 2020), the rest of the arguments per case. Adoption checks the table's SHA-256
# against each record's, so it must exist: python benchmarks/atomic_ids.py --dataset Beauty --out $ATOMIC_IDS
ATOMIC_IDS=saved/Beauty-atomic_ids.tsv
atomic_models() {
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 --config_files=$C \
    --set TIGER:semantic_ids_file=$ATOMIC_IDS --set TIGER:tie_embeddings=True \
    --epochs=${EPOCHS:-20} --time_budget_minutes=75 "$@"
}

# the atomic-ID control with the last-item start and no decoder layers (SASRec's readout), the
# rest of the arguments per case
atomic_no_decoder_models() {
  atomic_models --set TIGER:decoder_start=last_item --set TIGER:n_decoder_layers=0 "$@"
}

# BBQRec's best measured generator settings on top of the last-item start (docs/RESULTS.md, "The
# input norm on BBQRec and TIGER"): token embeddings from the codebooks, inputs normalised
BBQ_INHERIT_NORM=(--set BBQRec:inherit_codebook_embeddings=True --set BBQRec:input_norm=True)

# BBQRec with the last-item start, seed 2020, 20 epochs, on the 57e586 stage 1; the rest per case
bbqrec_last_item_57e586_models() {
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    $(before_6dec BBQRec) --set BBQRec:tokenizer_checkpoint=$BBQ_TOK_2020_57E586 --set BBQRec:decoder_start=last_item \
    --epochs=20 --time_budget_minutes=75 "$@"
}

case "${1:-}" in
table2)
  python3 run_recbole_bbq.py --no_training --models=GRU4Rec,SASRec,TIGER,LETTER,BBQRec --dataset=Beauty --seeds=2020 \
    $RECBOLE_TABLE2 \
    --model_config TIGER:$C --model_config LETTER:$C --model_config BBQRec:$C $(before_6dec BBQRec) \
    --set TIGER:tokenizer_checkpoint=$TIGER_TOK --set TIGER:epochs=20 --set TIGER:time_budget_minutes=75 \
    $LETTER_STAGE1 \
    --set LETTER:cf_weight=0.01 --set LETTER:rq_level_reduction=sum \
    --set BBQRec:tokenizer_checkpoint=$TOK --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 \
    --set BBQRec:tie_embeddings=False --out=$OUT/table2 \
    --adopt=$(records $R/GRU4Rec-Beauty-Nov-24-2026_09-18-48-0446d7.json \
      $R/SASRec-Beauty-Dec-04-2026_21-38-47-5f6461.json $R/TIGER-Beauty-Nov-23-2026_20-08-10-aaff5b.json \
      $R/LETTER-Beauty-Nov-23-2026_12-06-54-6dc2a3.json $R/BBQRec-Beauty-Nov-23-2026_22-55-58-6c69a1.json)
  ;;
table2_current)  # Table 2 at two seeds, each generative model on the generator recipe its
  # validation picks (docs/RESULTS.md): TIGER and LETTER with the T5 overlay on C (dropout 0,
  # T5's initialisation, peak 0.001), LETTER at its defaults (cf_weight 0.1, levels averaged),
  # BBQRec at C for 20 epochs; RecBole's models as in table2. Every run on its saved stage 1
  table2_models $(before_6dec BBQRec) \
    --set BBQRec:tokenizer_checkpoint=$TOK \
    --set BBQRec@2021:tokenizer_checkpoint=saved/BBQRec-Beauty-Nov-24-2026_07-13-41-9c4b90-tokenizer.pth \
    --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 --set BBQRec:tie_embeddings=False --out=$OUT/table2_current \
    --adopt=$(records "${TABLE2_OTHERS[@]}" \
      $R/BBQRec-Beauty-Nov-23-2026_22-55-58-6c69a1.json $R/BBQRec-Beauty-Nov-24-2026_07-22-11-35cc09.json)
  ;;
table3)  # tokenizer ablations: each trains its own 2-epoch stage 1, BBQRec is its 8-epoch run
  A="tokenizer_epochs=2"; E="tokenizer_eval_step=1"; B="time_budget_minutes=75"
  python3 run_recbole_bbq.py --no_training --preset=table3 --models=BBQRec_noMIM,BBQRec_noRec,BBQRec_noU,BBQRec \
    --dataset=Beauty --seeds=2020 --config_files=$C $(before_6dec BBQRec_noMIM BBQRec_noRec BBQRec_noU BBQRec) \
    --set BBQRec:tokenizer_checkpoint=$TOK \
    --set BBQRec_noMIM:$A --set BBQRec_noMIM:$E --set BBQRec_noMIM:$B \
    --set BBQRec_noRec:$A --set BBQRec_noRec:$E --set BBQRec_noRec:$B \
    --set BBQRec_noU:$A --set BBQRec_noU:$E --set BBQRec_noU:$B --tie_embeddings=False --out=$OUT/table3 \
    --adopt=$(records $R/BBQRec_noMIM-Beauty-Nov-24-2026_00-08-04-8bfc63.json \
      $R/BBQRec_noRec-Beauty-Nov-24-2026_00-43-24-3d20d8.json \
      $R/BBQRec_noU-Beauty-Nov-24-2026_01-23-54-754f44.json $R/BBQRec-Beauty-Nov-23-2026_08-42-53-0b5cdd.json)
  ;;
table4)  # generator ablations, all on BBQRec's stage 1 above
  python3 run_recbole_bbq.py --no_training --preset=table4 --dataset=Beauty --seeds=2020 --config_files=$C \
    --tokenizer_checkpoint=$TOK $(before_6dec BBQRec_S BBQRec_E BBQRec) --set BBQRec_S:time_budget_minutes=70 \
    --set BBQRec_E:time_budget_minutes=60 --tie_embeddings=False --out=$OUT/table4 \
    --adopt=$(records $R/BBQRec_S-Beauty-Nov-23-2026_16-40-34-4a0483.json $R/BBQRec_E-Beauty-Nov-23-2026_17-53-58-fcfe51.json $R/BBQRec-Beauty-Nov-23-2026_08-42-53-0b5cdd.json)
  ;;
seeds)  # BBQRec and five ablations with a second seed (2021), each as in table3/table4
  A="tokenizer_epochs=2"; E="tokenizer_eval_step=1"; B="time_budget_minutes=75"
  python3 run_recbole_bbq.py --no_training --models=BBQRec_noMIM,BBQRec_noRec,BBQRec_noU,BBQRec_S,BBQRec_E,BBQRec --dataset=Beauty --seeds=2020,2021 \
    --config_files=$C $(before_6dec BBQRec_noMIM BBQRec_noRec BBQRec_noU BBQRec_S BBQRec_E BBQRec) \
    --set BBQRec:tokenizer_checkpoint=$TOK \
    --set BBQRec_S:tokenizer_checkpoint=$TOK --set BBQRec_S:time_budget_minutes=70 \
    --set BBQRec_E:tokenizer_checkpoint=$TOK --set BBQRec_E:time_budget_minutes=60 \
    --set BBQRec_noMIM:$A --set BBQRec_noMIM:$E --set BBQRec_noMIM:$B \
    --set BBQRec_noRec:$A --set BBQRec_noRec:$E --set BBQRec_noRec:$B \
    --set BBQRec_noU:$A --set BBQRec_noU:$E --set BBQRec_noU:$B --tie_embeddings=False --out=$OUT/seeds \
    --adopt=$(records $R/BBQRec-Beauty-Nov-23-2026_08-42-53-0b5cdd.json $R/BBQRec-Beauty-Nov-24-2026_02-23-23-43b28b.json \
      $R/BBQRec_noMIM-Beauty-Nov-24-2026_00-08-04-8bfc63.json $R/BBQRec_noMIM-Beauty-Nov-24-2026_02-52-17-f53ffa.json \
      $R/BBQRec_noU-Beauty-Nov-24-2026_01-23-54-754f44.json $R/BBQRec_noU-Beauty-Nov-24-2026_05-19-31-57c303.json \
      $R/BBQRec_noRec-Beauty-Nov-24-2026_00-43-24-3d20d8.json $R/BBQRec_noRec-Beauty-Nov-24-2026_06-25-35-657053.json \
      $R/BBQRec_S-Beauty-Nov-23-2026_16-40-34-4a0483.json $R/BBQRec_S-Beauty-Nov-24-2026_03-35-23-edb636.json \
      $R/BBQRec_E-Beauty-Nov-23-2026_17-53-58-fcfe51.json $R/BBQRec_E-Beauty-Nov-24-2026_05-52-27-0a8c5c.json)
  ;;
baselines)  # TIGER and LETTER at the 8-epoch recipe, each training its own 150-epoch stage 1, two seeds
  T="tokenizer_epochs=150"; V="tokenizer_eval_step=50"
  python3 run_recbole_bbq.py --no_training --models=TIGER,LETTER --dataset=Beauty --seeds=2020,2021 --config_files=$C \
    --set TIGER:$T --set TIGER:$V --set LETTER:$T --set LETTER:$V --set LETTER:letter_cf_epochs=5 --set LETTER:cf_weight=0.01 --set LETTER:rq_level_reduction=sum \
    --out=$OUT/baselines \
    --adopt=$(records $R/TIGER-Beauty-Nov-23-2026_08-01-01-bf81ed.json $R/TIGER-Beauty-Nov-24-2026_04-11-56-18f0e3.json \
      $R/LETTER-Beauty-Nov-23-2026_12-06-54-6dc2a3.json $R/LETTER-Beauty-Nov-24-2026_04-32-23-24eaf6.json)
  ;;
table2_seeds)  # Table 2's 20-epoch BBQRec at two seeds; seed 2021 on its own saved stage 1
  # (--tokenizer_only --seed=2021 --tokenizer_epochs=2 --tokenizer_eval_step=1). TIGER's seed-2021
  # 20-epoch run collapsed to a history-blind generator and was stopped (docs/RESULTS.md): add
  # --models=TIGER,BBQRec, --set TIGER@2021:tokenizer_checkpoint=... and both TIGER records here
  # once a TIGER run at seed 2021 exists
  TOK21=saved/BBQRec-Beauty-Nov-24-2026_07-13-41-9c4b90-tokenizer.pth
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020,2021 --config_files=$C \
    $(before_6dec BBQRec) --set BBQRec:tokenizer_checkpoint=$TOK --set BBQRec@2021:tokenizer_checkpoint=$TOK21 \
    --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 --set BBQRec:tie_embeddings=False --out=$OUT/table2_seeds \
    --adopt=$(records $R/BBQRec-Beauty-Nov-23-2026_22-55-58-6c69a1.json $R/BBQRec-Beauty-Nov-24-2026_07-22-11-35cc09.json)
  ;;
t5_recipe)  # TIGER, LETTER and BBQRec at seed 2021, 20 epochs at peak 0.001 with dropout 0 and T5's
  # initialisation (docs/RESULTS.md, "TIGER's slow, history-blind start" and "BBQRec with the same
  # generator changes"): the overlay T5 on the family's C. TIGER and BBQRec on their saved
  # seed-2021 stage 1s (--tokenizer_only --seed=2021, TIGER with --tokenizer_epochs=150
  # --tokenizer_eval_step=50, BBQRec with --tokenizer_epochs=2 --tokenizer_eval_step=1), LETTER
  # training its own stage 1 in the run
  TIGER_TOK21=saved/TIGER-Beauty-Dec-03-2026_22-29-47-5e752e-tokenizer.pth
  BBQ_TOK21=saved/BBQRec-Beauty-Dec-04-2026_03-50-52-bb1b03-tokenizer.pth
  python3 run_recbole_bbq.py --no_training --models=TIGER,LETTER,BBQRec --dataset=Beauty --seeds=2021 --config_files=$C,$T5 \
    --set TIGER:tokenizer_checkpoint=$TIGER_TOK21 $(before_6dec BBQRec) --set BBQRec:tokenizer_checkpoint=$BBQ_TOK21 \
    $LETTER_STAGE1 \
    --set LETTER:cf_weight=0.01 --set LETTER:rq_level_reduction=sum --set BBQRec:tie_embeddings=False --out=$OUT/t5_recipe \
    --adopt=$(records $R/TIGER-Beauty-Dec-03-2026_23-06-52-3ec0cd.json $R/LETTER-Beauty-Dec-03-2026_23-42-36-177ac1.json \
      $R/BBQRec-Beauty-Dec-04-2026_03-58-39-d6dac5.json)
  ;;
t5_seeds)  # TIGER and LETTER at the generator changes (overlay T5 on C), two seeds; TIGER on its
  # saved 150-epoch stage 1s (--tokenizer_only --tokenizer_epochs=150 --tokenizer_eval_step=50
  # --seed=S), LETTER training its own stage 1 in each run
  python3 run_recbole_bbq.py --no_training --models=TIGER,LETTER --dataset=Beauty --seeds=2020,2021 --config_files=$C,$T5 \
    --set TIGER@2020:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-04-2026_04-50-37-7fec8b-tokenizer.pth \
    --set TIGER@2021:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-03-2026_22-29-47-5e752e-tokenizer.pth \
    $LETTER_STAGE1 \
    --set LETTER:cf_weight=0.01 --set LETTER:rq_level_reduction=sum --out=$OUT/t5_seeds \
    --adopt=$(records $R/TIGER-Beauty-Dec-04-2026_04-52-12-2789bc.json $R/TIGER-Beauty-Dec-03-2026_23-06-52-3ec0cd.json \
      $R/LETTER-Beauty-Dec-04-2026_10-02-06-9c0936.json $R/LETTER-Beauty-Dec-03-2026_23-42-36-177ac1.json)
  ;;
tiger_tokenizer_2000_epochs)  # TIGER at seed 2020 as t5_seeds' seed-2020 run, on a stage 1 trained
  # 2,000 RQ-VAE epochs instead of 150 (--tokenizer_only --tokenizer_epochs=2000 --tokenizer_eval_step=250)
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 --config_files=$C,$T5 \
    --set TIGER:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-07-2026_00-09-54-34669d-tokenizer.pth \
    --out=$OUT/tiger_tokenizer_2000_epochs --adopt=$R/TIGER-Beauty-Dec-07-2026_00-32-23-ccce4f.json
  ;;
tiger_full_size_bf16)  # TIGER at seed 2020 on a stage 1 like t5_seeds' seed-2020 one (ce117b, made on the
  # nineteenth session's machine by the same 150-epoch command, the same collision statistics as
  # 7fec8b) with the paper's generator size, trained under bfloat16 autocast on a 7-epoch cosine
  # to fit the 75-minute budget, against the half-size 20-epoch run (t5_seeds)
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 \
    --config_files=$C,$T5,$F \
    --set TIGER:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-07-2026_02-55-53-ce117b-tokenizer.pth \
    --set TIGER:epochs=7 --set TIGER:enable_amp=True \
    --out=$OUT/tiger_full_size_bf16 --adopt=$R/TIGER-Beauty-Dec-07-2026_02-57-53-c3028d.json
  ;;
tiger_full_size_bf16_seeds)  # tiger_full_size_bf16 at two seeds: seed 2021 on its own stage 1 (7727ca,
  # the twenty-first session's machine, the same 150-epoch command at --seed=2021; the collision
  # statistics of 5e752e, on which Table 2's half-size seed-2021 TIGER trained), record 3bb301
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020,2021 \
    --config_files=$C,$T5,$F \
    --set TIGER@2020:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-07-2026_02-55-53-ce117b-tokenizer.pth \
    --set TIGER@2021:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-07-2026_09-02-24-7727ca-tokenizer.pth \
    --set TIGER:epochs=7 --set TIGER:enable_amp=True --out=$OUT/tiger_full_size_bf16_seeds \
    --adopt=$(records $R/TIGER-Beauty-Dec-07-2026_02-57-53-c3028d.json $R/TIGER-Beauty-Dec-07-2026_09-03-31-3bb301.json)
  ;;
tiger_full_size_bf16_14_epochs)  # tiger_full_size_bf16 on a 14-epoch cosine, which the twenty-first
  # session's faster machine fits into the 75-minute budget; its stage 1 (011f2e, the same
  # 150-epoch command on that machine) has ce117b's statistics (956 colliding items, group 17)
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 \
    --config_files=$C,$T5,$F \
    --set TIGER:tokenizer_checkpoint=$TIGER_TOK_011F2E \
    --set TIGER:epochs=14 --set TIGER:enable_amp=True --out=$OUT/tiger_full_size_bf16_14_epochs \
    --adopt=$R/TIGER-Beauty-Dec-07-2026_09-42-52-1cfbb6.json
  ;;
tiger_full_size_bf16_14_epochs_dropout)  # tiger_full_size_bf16_14_epochs with the generator's
  # dropout at 0.1 (the rate of cornac's defaults and GRID's recipe; Paischer et al. use 0.2), seed
  # 2020, on stage 1 51d501 (the twenty-sixth session's slower machine, the same 150-epoch command;
  # 011f2e's statistics, 956 colliding items, group 17); the no-dropout run to compare is 1cfbb6
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 \
    --config_files=$C,$T5,$F \
    --set TIGER:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-07-2026_23-40-12-51d501-tokenizer.pth \
    --set TIGER:epochs=14 --set TIGER:enable_amp=True --set TIGER:dropout_prob=0.1 \
    --set TIGER:time_budget_minutes=150 --out=$OUT/tiger_full_size_bf16_14_epochs_dropout \
    --adopt=$R/TIGER-Beauty-Dec-08-2026_01-24-17-33c9e0.json
  ;;
tiger_full_size_bf16_14_epochs_seeds)  # tiger_full_size_bf16_14_epochs at two seeds: seed 2021 on its
  # own stage 1 (09b486, the twenty-second session's machine, the same 150-epoch command at
  # --seed=2021; 7727ca's statistics, 837 colliding items). That machine was slower, so the
  # 75-minute budget stopped it before epoch 9 (record a839a0, not kept) and it was resumed from
  # its -latest checkpoint with the same command to the schedule's end (record 15f1ef)
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020,2021 \
    --config_files=$C,$T5,$F \
    --set TIGER@2020:tokenizer_checkpoint=$TIGER_TOK_011F2E \
    --set TIGER@2021:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-07-2026_11-02-54-09b486-tokenizer.pth \
    --set TIGER:epochs=14 --set TIGER:enable_amp=True --out=$OUT/tiger_full_size_bf16_14_epochs_seeds \
    --adopt=$(records $R/TIGER-Beauty-Dec-07-2026_09-42-52-1cfbb6.json $R/TIGER-Beauty-Dec-07-2026_12-22-22-15f1ef.json)
  ;;
bbqrec_full_size_bf16)  # BBQRec at seed 2020 at its defaults with the paper's generator size under
  # bfloat16 on a 7-epoch cosine, as tiger_full_size_bf16; its 2-epoch stage 1 (9187f2, this
  # session's machine) has the level sizes of dcc1e5, on which the half-size bb61ac trained
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 \
    --config_files=$C,$F \
    --set BBQRec:tokenizer_checkpoint=saved/BBQRec-Beauty-Dec-07-2026_04-14-46-9187f2-tokenizer.pth \
    --set BBQRec:epochs=7 --set BBQRec:enable_amp=True --set BBQRec:time_budget_minutes=75 \
    --out=$OUT/bbqrec_full_size_bf16 --adopt=$R/BBQRec-Beauty-Dec-07-2026_04-23-12-6e2c53.json
  ;;
letter_full_size_bf16)  # LETTER at seed 2020 at its defaults with the paper's generator size under
  # bfloat16 on a 7-epoch cosine, as tiger_full_size_bf16; its stage 1 (9a3796, made on the twentieth
  # session's machine by table2's seed-2020 LETTER command with --tokenizer_only) has the collision
  # statistics of 61cf6d, on which the half-size 5b9d70 trained
  python3 run_recbole_bbq.py --no_training --models=LETTER --dataset=Beauty --seeds=2020 \
    --config_files=$C,$T5,$F \
    --set LETTER:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-07-2026_05-34-50-9a3796-tokenizer.pth \
    --set LETTER:epochs=7 --set LETTER:enable_amp=True \
    --out=$OUT/letter_full_size_bf16 --adopt=$R/LETTER-Beauty-Dec-07-2026_05-44-18-c11914.json
  ;;
letter_full_size_bf16_14_epochs)  # LETTER at seed 2020 on tiger_full_size_bf16_14_epochs' schedule
  # (paper size, bfloat16, 14-epoch cosine) against that TIGER (1cfbb6, the twenty-first session's
  # faster machine). Its stage 1 (b0619c, table2's seed-2020 LETTER command with --tokenizer_only,
  # 2 colliding items) and the generator ran on the twenty-fourth to twenty-sixth sessions' slower
  # machine: the 75-minute budget stopped the first process after 7 of 14 epochs (record a8c331,
  # interim); it was resumed from its -latest checkpoint with a 150-minute budget (a05f37, ended with
  # its session after epoch 7's checkpoint) and again from that one (record 2d923a), to the end of
  # the same schedule
  python3 run_recbole_bbq.py --no_training --models=TIGER,LETTER --dataset=Beauty --seeds=2020 \
    --config_files=$C,$T5,$F \
    --set TIGER:tokenizer_checkpoint=$TIGER_TOK_011F2E \
    --set LETTER:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-07-2026_19-07-18-b0619c-tokenizer.pth \
    $LETTER_STAGE1 --set LETTER:time_budget_minutes=150 \
    --set epochs=14 --set enable_amp=True --out=$OUT/letter_full_size_bf16_14_epochs \
    --adopt=$(records $R/TIGER-Beauty-Dec-07-2026_09-42-52-1cfbb6.json $R/LETTER-Beauty-Dec-07-2026_22-30-42-2d923a.json)
  ;;
bbqrec_full_size_bf16_inherit)  # bbqrec_full_size_bf16 with the generator's token embeddings
  # inherited from the codebooks (as BBQRec_E), on stage 1 146940 (the twentieth session's machine,
  # the same command and level sizes as 9187f2); trained 3 epochs of the 7-epoch cosine
  # (--epochs=3 --schedule_horizon=7e, record 976b6b, a probe), then resumed from its -latest
  # checkpoint with --epochs=7 to the end of the same schedule (record 0b678a)
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 \
    --config_files=$C,$F \
    --set BBQRec:tokenizer_checkpoint=saved/BBQRec-Beauty-Dec-07-2026_07-17-22-146940-tokenizer.pth \
    --set BBQRec:epochs=7 --set BBQRec:schedule_horizon=7e --set BBQRec:enable_amp=True \
    --set BBQRec:time_budget_minutes=75 --set BBQRec:inherit_codebook_embeddings=True \
    --out=$OUT/bbqrec_full_size_bf16_inherit --adopt=$R/BBQRec-Beauty-Dec-07-2026_07-44-49-0b678a.json
  ;;
bbqrec_full_size_bf16_inherit_seeds)  # bbqrec_full_size_bf16_inherit at two seeds: seed 2021 trained
  # its own 2-epoch stage 1 (69ebb4, the twenty-first session's machine, the seed-2020 command at
  # --seed=2021) and then the 7 epochs in one run (record ebcbff)
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020,2021 \
    --config_files=$C,$F \
    --set BBQRec@2020:tokenizer_checkpoint=saved/BBQRec-Beauty-Dec-07-2026_07-17-22-146940-tokenizer.pth \
    --set BBQRec@2021:tokenizer_checkpoint=saved/BBQRec-Beauty-Dec-07-2026_08-28-03-69ebb4-tokenizer.pth \
    --set BBQRec:epochs=7 --set BBQRec:schedule_horizon=7e --set BBQRec:enable_amp=True \
    --set BBQRec:time_budget_minutes=75 --set BBQRec:inherit_codebook_embeddings=True \
    --out=$OUT/bbqrec_full_size_bf16_inherit_seeds \
    --adopt=$(records $R/BBQRec-Beauty-Dec-07-2026_07-44-49-0b678a.json $R/BBQRec-Beauty-Dec-07-2026_08-33-08-ebcbff.json)
  ;;
bbqrec_full_size_bf16_inherit_14_epochs)  # bbqrec_full_size_bf16_inherit on the 14-epoch cosine of
  # tiger_full_size_bf16_14_epochs, at seed 2020 on stage 1 59c898 (the twenty-second session's
  # machine, the 2-epoch command; 146940's statistics). The 75-minute budget stopped it before
  # epoch 11 (record adc8ea, not kept); resumed from its -latest checkpoint with the same command
  # to the schedule's end (record 1bf705)
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 \
    --config_files=$C,$F \
    --set BBQRec:tokenizer_checkpoint=saved/BBQRec-Beauty-Dec-07-2026_13-20-08-59c898-tokenizer.pth \
    --set BBQRec:epochs=14 --set BBQRec:enable_amp=True \
    --set BBQRec:time_budget_minutes=75 --set BBQRec:inherit_codebook_embeddings=True \
    --out=$OUT/bbqrec_full_size_bf16_inherit_14_epochs --adopt=$R/BBQRec-Beauty-Dec-07-2026_15-08-52-1bf705.json
  ;;
letter_cf30)  # LETTER at seed 2020 with its collaborative SASRec trained 30 epochs (the default)
  # instead of 5, against TIGER at the same seed, both on the generator changes (overlay T5 on C)
  python3 run_recbole_bbq.py --no_training --models=TIGER,LETTER --dataset=Beauty --seeds=2020 --config_files=$C,$T5 \
    --set TIGER:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-04-2026_04-50-37-7fec8b-tokenizer.pth \
    --set LETTER:tokenizer_epochs=150 --set LETTER:tokenizer_eval_step=50 --set LETTER:cf_weight=0.01 --set LETTER:rq_level_reduction=sum \
    --out=$OUT/letter_cf30 \
    --adopt=$(records $R/TIGER-Beauty-Dec-04-2026_04-52-12-2789bc.json $R/LETTER-Beauty-Dec-04-2026_13-34-25-3c5232.json)
  ;;
letter_release_ids)  # the generator trained on the IDs LETTER's release published for Beauty
  # (benchmarks/letter_release_ids.py) against TIGER on its own, both seed 2020, overlay T5 on C
  python3 run_recbole_bbq.py --no_training --models=TIGER,LETTER --dataset=Beauty --seeds=2020 --config_files=$C,$T5 \
    --set TIGER:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-04-2026_04-50-37-7fec8b-tokenizer.pth \
    --set LETTER:semantic_ids_file=saved/letter-release-Beauty-semantic_ids.tsv --set LETTER:cf_weight=0.01 --set LETTER:rq_level_reduction=sum \
    --out=$OUT/letter_release_ids \
    --adopt=$(records $R/TIGER-Beauty-Dec-04-2026_04-52-12-2789bc.json $R/LETTER-Beauty-Dec-04-2026_15-39-35-7b091c.json)
  ;;
letter_release_ids_full_size_14_epochs)  # letter_release_ids at the paper's size on the 14-epoch
  # cosine of tiger_full_size_bf16_14_epochs, seed 2020, against that TIGER (1cfbb6, the twenty-first
  # session's machine). The release-ID run began on the twenty-third session's machine (process
  # c90bd3, ended with that session after epoch 3's checkpoint) and was resumed from that
  # checkpoint on the same machine with a 150-minute budget, so it could run to the schedule's end
  # in one process (record e8b802): a diagnostic of the generator on the release's IDs, not a
  # Table 2 row
  python3 run_recbole_bbq.py --no_training --models=TIGER,LETTER --dataset=Beauty --seeds=2020 \
    --config_files=$C,$T5,$F \
    --set TIGER:tokenizer_checkpoint=$TIGER_TOK_011F2E \
    --set LETTER:semantic_ids_file=saved/letter-release-Beauty-semantic_ids.tsv \
    --set LETTER:time_budget_minutes=150 --set epochs=14 --set enable_amp=True \
    --out=$OUT/letter_release_ids_full_size_14_epochs \
    --adopt=$(records $R/TIGER-Beauty-Dec-07-2026_09-42-52-1cfbb6.json $R/LETTER-Beauty-Dec-07-2026_16-39-23-e8b802.json)
  ;;
table2_full_size)  # Table 2 with the three generative models at the paper's generator size under
  # bfloat16, two seeds, each on the cosine its validation picks: TIGER 14 epochs
  # (tiger_full_size_bf16_14_epochs_seeds), LETTER 7 (letter_full_size_bf16 at 2020; 2021 on its own
  # stage 1 f70f8e, the twenty-sixth session's machine, with 7e258a's statistics; budget 100
  # minutes so that it could not cut the 7 epochs on that slower machine), BBQRec with inherited
  # token embeddings 7 (bbqrec_full_size_bf16_inherit_seeds); GRU4Rec and SASRec as in
  # table2_history_item
  python3 run_recbole_bbq.py --no_training --models=GRU4Rec,SASRec,TIGER,LETTER,BBQRec --dataset=Beauty \
    --seeds=2020,2021 \
    $RECBOLE_TABLE2 \
    --model_config TIGER:$C,$T5,$F --model_config LETTER:$C,$T5,$F --model_config BBQRec:$C,$F \
    --set TIGER@2020:tokenizer_checkpoint=$TIGER_TOK_011F2E \
    --set TIGER@2021:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-07-2026_11-02-54-09b486-tokenizer.pth \
    --set TIGER:epochs=14 --set TIGER:enable_amp=True \
    --set LETTER@2020:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-07-2026_05-34-50-9a3796-tokenizer.pth \
    --set LETTER@2021:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-07-2026_23-45-23-f70f8e-tokenizer.pth \
    --set LETTER@2021:time_budget_minutes=100 \
    --set LETTER:epochs=7 --set LETTER:enable_amp=True \
    --set BBQRec@2020:tokenizer_checkpoint=saved/BBQRec-Beauty-Dec-07-2026_07-17-22-146940-tokenizer.pth \
    --set BBQRec@2021:tokenizer_checkpoint=saved/BBQRec-Beauty-Dec-07-2026_08-28-03-69ebb4-tokenizer.pth \
    --set BBQRec:epochs=7 --set BBQRec:schedule_horizon=7e --set BBQRec:enable_amp=True \
    --set BBQRec:time_budget_minutes=75 --set BBQRec:inherit_codebook_embeddings=True \
    --out=$OUT/table2_full_size \
    --adopt=$(records "${TABLE2_OTHERS[@]:0:4}" \
      $R/TIGER-Beauty-Dec-07-2026_09-42-52-1cfbb6.json $R/TIGER-Beauty-Dec-07-2026_12-22-22-15f1ef.json \
      $R/LETTER-Beauty-Dec-07-2026_05-44-18-c11914.json $R/LETTER-Beauty-Dec-07-2026_23-58-33-3e78fc.json \
      $R/BBQRec-Beauty-Dec-07-2026_07-44-49-0b678a.json $R/BBQRec-Beauty-Dec-07-2026_08-33-08-ebcbff.json)
  ;;
tiger_one_sentence)  # TIGER's half-size Table 2 recipe (overlay T5 on C, 20 epochs) on BeautyTC: the
  # same interactions as Beauty, but one MiniLM embedding of "title + category path" as one sentence
  # (dataset_prep p5 --name BeautyTC --modalities text --text-fields title,categories) instead of
  # two concatenated ones; against t5_seeds' TIGER (2789bc, 3ec0cd). Stage 1s 0e174e (2020) and
  # f678e5 (2021) by the 150-epoch --tokenizer_only command. The seed-2020 run stopped with its
  # session after two epochs (0-1) and was resumed from its -latest checkpoint (record 1831c8;
  # 2021: a84a09)
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=BeautyTC --seeds=2020,2021 \
    --config_files=$C,$T5 --set 'TIGER:modalities=["text"]' \
    --set TIGER@2020:tokenizer_checkpoint=saved/TIGER-BeautyTC-Dec-07-2026_19-06-12-0e174e-tokenizer.pth \
    --set TIGER@2021:tokenizer_checkpoint=saved/TIGER-BeautyTC-Dec-07-2026_17-04-57-f678e5-tokenizer.pth \
    --out=$OUT/tiger_one_sentence \
    --adopt=$(records $R/TIGER-BeautyTC-Dec-07-2026_19-34-10-1831c8.json $R/TIGER-BeautyTC-Dec-07-2026_20-00-32-a84a09.json)
  ;;
letter_levels_mean)  # LETTER with its levels' quantization losses averaged as the release does
  # (rq_level_reduction: mean, the default since 4 Dec; the records above ran at sum) against
  # TIGER, two seeds, overlay T5 on C. Each LETTER stage 1 by --tokenizer_only --seed=S
  # --letter_cf_epochs=5 --tokenizer_epochs=150 --tokenizer_eval_step=50, then the generator on
  # it; TIGER on its saved stage 1s
  python3 run_recbole_bbq.py --no_training --models=TIGER,LETTER --dataset=Beauty --seeds=2020,2021 --config_files=$C,$T5 \
    --set TIGER@2020:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-04-2026_04-50-37-7fec8b-tokenizer.pth \
    --set TIGER@2021:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-03-2026_22-29-47-5e752e-tokenizer.pth \
    $LETTER_STAGE1 \
    --set LETTER@2020:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-04-2026_18-36-59-61cf6d-tokenizer.pth \
    --set LETTER@2021:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-04-2026_20-46-52-7e258a-tokenizer.pth \
    --out=$OUT/letter_levels_mean \
    --adopt=$(records $R/TIGER-Beauty-Dec-04-2026_04-52-12-2789bc.json $R/TIGER-Beauty-Dec-03-2026_23-06-52-3ec0cd.json \
      $R/LETTER-Beauty-Dec-04-2026_19-48-37-5b9d70.json $R/LETTER-Beauty-Dec-04-2026_20-54-48-0d48f0.json)
  ;;
letter_cf01)  # LETTER with its collaborative term weighted 0.1 (the default since 4 Dec; the
  # records above ran at the former 0.01) against TIGER, two seeds, overlay T5 on C. Each LETTER
  # stage 1 by --tokenizer_only --seed=S --letter_cf_epochs=5 --tokenizer_epochs=150
  # --tokenizer_eval_step=50, then the generator on it; TIGER on its saved stage 1s
  python3 run_recbole_bbq.py --no_training --models=TIGER,LETTER --dataset=Beauty --seeds=2020,2021 --config_files=$C,$T5 \
    --set TIGER@2020:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-04-2026_04-50-37-7fec8b-tokenizer.pth \
    --set TIGER@2021:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-03-2026_22-29-47-5e752e-tokenizer.pth \
    $LETTER_STAGE1 \
    --set LETTER@2020:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-04-2026_16-26-14-5cfab5-tokenizer.pth \
    --set LETTER@2021:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-04-2026_19-03-36-a3e362-tokenizer.pth \
    --set LETTER:rq_level_reduction=sum --out=$OUT/letter_cf01 \
    --adopt=$(records $R/TIGER-Beauty-Dec-04-2026_04-52-12-2789bc.json $R/TIGER-Beauty-Dec-03-2026_23-06-52-3ec0cd.json \
      $R/LETTER-Beauty-Dec-04-2026_16-35-30-d5094d.json $R/LETTER-Beauty-Dec-04-2026_19-10-50-ead4ee.json)
  ;;
gru4rec_20_epochs)  # GRU4Rec at table2's recipe with a 20-epoch schedule instead of 10, two
  # seeds, against SASRec (table2_current's records): does the shorter schedule cut a rising curve?
  python3 run_recbole_bbq.py --no_training --models=GRU4Rec,SASRec --dataset=Beauty --seeds=2020,2021 \
    --model_config GRU4Rec:$S --model_config SASRec:$S \
    --set GRU4Rec:epochs=20 --set GRU4Rec:time_budget_minutes=30 --set GRU4Rec:learning_rate=0.002 \
    --set GRU4Rec:weight_decay=0 --set SASRec:time_budget_minutes=75 --out=$OUT/gru4rec_20_epochs \
    --adopt=$(records $R/GRU4Rec-Beauty-Dec-04-2026_23-19-13-6a68d8.json $R/GRU4Rec-Beauty-Dec-04-2026_23-28-54-e7f0c3.json \
      $R/SASRec-Beauty-Dec-04-2026_21-38-47-5f6461.json $R/SASRec-Beauty-Dec-04-2026_22-21-37-e5d735.json)
  ;;
tiger_no_dead_code_reset)  # TIGER at seed 2020 on a stage 1 trained without dead-code re-seeding
  # (--dead_code_reset=0 --tokenizer_only --tokenizer_epochs=150 --tokenizer_eval_step=50), the
  # generator at the T5 overlay as t5_seeds' TIGER; compare with t5_seeds (re-seeding on)
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 --config_files=$C,$T5 \
    --set TIGER:dead_code_reset=0 \
    --set TIGER:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-05-2026_00-02-27-bd21c1-tokenizer.pth \
    --out=$OUT/tiger_no_dead_code_reset --adopt=$R/TIGER-Beauty-Dec-05-2026_00-03-58-c4e58a.json
  ;;
bbqrec_2020_rerun)  # BBQRec at seed 2020 on Table 2's recipe, rerun on 5 Dec's code on a new stage 1
  # (--tokenizer_epochs=2 --tokenizer_eval_step=1 --tokenizer_only); compare with table2_seeds' seed 2020
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    $(before_6dec BBQRec) --set BBQRec:tokenizer_checkpoint=$BBQ_TOK_2020 \
    --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 --set BBQRec:tie_embeddings=False \
    --out=$OUT/bbqrec_2020_rerun --adopt=$R/BBQRec-Beauty-Dec-05-2026_02-50-53-0f40f4.json
  ;;
table4_20_epochs)  # Table 4's S at Table 2's recipe (20 epochs), seed 2020, on the stage 1 of
  # bbqrec_2020_rerun, whose BBQRec run is the reference (BBQRec_E at 20 epochs not run yet)
  python3 run_recbole_bbq.py --no_training --models=BBQRec_S,BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    $(before_6dec BBQRec_S BBQRec) \
    --tokenizer_checkpoint=$BBQ_TOK_2020 --epochs=20 --time_budget_minutes=75 --tie_embeddings=False --out=$OUT/table4_20_epochs \
    --adopt=$(records $R/BBQRec_S-Beauty-Dec-05-2026_04-40-17-8f6f9f.json $R/BBQRec-Beauty-Dec-05-2026_02-50-53-0f40f4.json)
  ;;
bbqrec_tied)  # BBQRec as bbqrec_2020_rerun (same stage 1, seed, recipe) with tie_embeddings: True
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    $(before_6dec BBQRec) --set BBQRec:tokenizer_checkpoint=$BBQ_TOK_2020 \
    --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 --set BBQRec:tie_embeddings=True \
    --out=$OUT/bbqrec_tied --adopt=$R/BBQRec-Beauty-Dec-05-2026_05-27-15-40ac03.json
  ;;
bbqrec_tied_seeds)  # bbqrec_tied at two seeds, each on its own stage 1 (seed 2021's trained 5 Dec)
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020,2021 --config_files=$C \
    $(before_6dec BBQRec) --set BBQRec@2020:tokenizer_checkpoint=$BBQ_TOK_2020 \
    --set BBQRec@2021:tokenizer_checkpoint=$BBQ_TOK_2021 \
    --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 --set BBQRec:tie_embeddings=True \
    --out=$OUT/bbqrec_tied_seeds \
    --adopt=$(records $R/BBQRec-Beauty-Dec-05-2026_05-27-15-40ac03.json $R/BBQRec-Beauty-Dec-05-2026_07-33-54-43e660.json)
  ;;
bbqrec_output_control)  # bbqrec_tied's runs untied, without output bias and output-layer decay
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020,2021 --config_files=$C \
    $(before_6dec BBQRec) --set BBQRec@2020:tokenizer_checkpoint=$BBQ_TOK_2020 \
    --set BBQRec@2021:tokenizer_checkpoint=$BBQ_TOK_2021 \
    --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 \
    --set BBQRec:output_bias=False --set BBQRec:weight_decay_scope=hidden --set BBQRec:tie_embeddings=False \
    --out=$OUT/bbqrec_output_control \
    --adopt=$(records $R/BBQRec-Beauty-Dec-05-2026_08-25-30-c2e32b.json $R/BBQRec-Beauty-Dec-05-2026_09-19-44-3bf0a7.json)
  ;;
table4_tied)  # Table 4 at Table 2's recipe with BBQRec's tied default, seed 2020, all three on
  # the stage 1 of bbqrec_tied (BBQRec's record is that case's run)
  python3 run_recbole_bbq.py --no_training --preset=table4 --dataset=Beauty --seeds=2020 --config_files=$C \
    --tokenizer_checkpoint=$BBQ_TOK_2020 $(before_6dec BBQRec_S BBQRec_E BBQRec) \
    --epochs=20 --time_budget_minutes=75 --out=$OUT/table4_tied \
    --adopt=$(records $R/BBQRec_S-Beauty-Dec-05-2026_10-29-36-97f9f3.json $R/BBQRec_E-Beauty-Dec-05-2026_11-38-50-cf7974.json \
      $R/BBQRec-Beauty-Dec-05-2026_05-27-15-40ac03.json)
  ;;
table2_tied)  # table2_current with BBQRec at its tied default: bbqrec_tied_seeds' two runs (each on
  # its own stage 1), the other models' records as in table2_current
  table2_models $(before_6dec BBQRec) \
    --set BBQRec@2020:tokenizer_checkpoint=$BBQ_TOK_2020 \
    --set BBQRec@2021:tokenizer_checkpoint=$BBQ_TOK_2021 \
    --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 --out=$OUT/table2_tied \
    --adopt=$(records "${TABLE2_OTHERS[@]}" \
      $R/BBQRec-Beauty-Dec-05-2026_05-27-15-40ac03.json $R/BBQRec-Beauty-Dec-05-2026_07-33-54-43e660.json)
  ;;
tiger_tied)  # TIGER as tiger_no_dead_code_reset (same stage 1, seed, T5 overlay) with tie_embeddings: True
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 --config_files=$C,$T5 \
    --set TIGER:dead_code_reset=0 --set TIGER:tie_embeddings=True \
    --set TIGER:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-05-2026_00-02-27-bd21c1-tokenizer.pth \
    --out=$OUT/tiger_tied --adopt=$R/TIGER-Beauty-Dec-05-2026_06-24-05-2b2ea4.json
  ;;
table3_tied)  # Table 3 at Table 2's tied 20-epoch recipe, seed 2020: each ablation trains its own
  # 2-epoch stage 1, BBQRec is table4_tied's (its 2-epoch stage 1 1fa13c)
  A="tokenizer_epochs=2"; E="tokenizer_eval_step=1"
  python3 run_recbole_bbq.py --no_training --preset=table3 --models=BBQRec_noMIM,BBQRec_noRec,BBQRec_noU,BBQRec \
    --dataset=Beauty --seeds=2020 --config_files=$C \
    $(before_6dec BBQRec_noMIM BBQRec_noRec BBQRec_noU BBQRec) --set BBQRec:tokenizer_checkpoint=$BBQ_TOK_2020 \
    --set BBQRec_noMIM:$A --set BBQRec_noMIM:$E --set BBQRec_noRec:$A --set BBQRec_noRec:$E \
    --set BBQRec_noU:$A --set BBQRec_noU:$E \
    --epochs=20 --time_budget_minutes=75 --out=$OUT/table3_tied \
    --adopt=$(records $R/BBQRec_noMIM-Beauty-Dec-05-2026_13-44-29-5675a7.json $R/BBQRec_noRec-Beauty-Dec-05-2026_19-53-01-e3a971.json \
      $R/BBQRec_noU-Beauty-Dec-05-2026_21-10-01-f55525.json $R/BBQRec-Beauty-Dec-05-2026_05-27-15-40ac03.json)
  ;;
atomic_control)  # our generator on one level of private item tokens, tied, at BBQRec's 20-epoch
  # recipe, seed 2020: the same next-item softmax as SASRec's. The run read the same table
  # (by SHA-256) from /tmp
  atomic_models --out=$OUT/atomic_control \
    --adopt=$R/TIGER-Beauty-Dec-05-2026_14-45-53-1f179c.json
  ;;
atomic_last_item)  # atomic_control with decoder_start: last_item (the decoder starts from BOS plus
  # the newest history item's encoder state)
  atomic_models --set TIGER:decoder_start=last_item --out=$OUT/atomic_last_item \
    --adopt=$R/TIGER-Beauty-Dec-05-2026_16-50-18-972eaf.json
  ;;
atomic_no_decoder)  # atomic_last_item with no decoder layers (n_decoder_layers: 0): the item is
  # scored from the newest history item's encoder state (+ BOS), SASRec's readout; two seeds
  atomic_no_decoder_models --seeds=2020,2021 --out=$OUT/atomic_no_decoder \
    --adopt=$(records $R/TIGER-Beauty-Dec-05-2026_20-37-49-ec3cad.json $R/TIGER-Beauty-Dec-06-2026_07-10-38-6f4a1c.json)
  ;;
atomic_one_decoder_layer)  # atomic_last_item with one decoder layer instead of two
  atomic_models --set TIGER:decoder_start=last_item --set TIGER:n_decoder_layers=1 \
    --out=$OUT/atomic_one_decoder_layer --adopt=$R/TIGER-Beauty-Dec-05-2026_22-22-21-15185e.json
  ;;
atomic_no_decoder_40_epochs)  # atomic_no_decoder over SASRec's 40-epoch schedule
  EPOCHS=40 atomic_no_decoder_models --out=$OUT/atomic_no_decoder_40_epochs --adopt=$R/TIGER-Beauty-Dec-06-2026_00-57-15-df1a81.json
  ;;
atomic_no_decoder_dropout_05)  # atomic_no_decoder at SASRec's dropout 0.5, with SASRec's placement
  # (final_dropout: False: the normed encoder and decoder outputs and the start undropped)
  atomic_no_decoder_models --set TIGER:dropout_prob=0.5 --set TIGER:final_dropout=False \
    --out=$OUT/atomic_no_decoder_dropout_05 --adopt=$R/TIGER-Beauty-Dec-06-2026_01-57-32-7e0a7c.json
  ;;
atomic_no_decoder_dropout_0)  # atomic_no_decoder without dropout
  atomic_no_decoder_models --set TIGER:dropout_prob=0.0 \
    --out=$OUT/atomic_no_decoder_dropout_0 --adopt=$R/TIGER-Beauty-Dec-06-2026_03-20-11-2b6d96.json
  ;;
atomic_no_decoder_lr001)  # atomic_no_decoder at SASRec's peak rate 0.001
  atomic_no_decoder_models --set TIGER:learning_rate=0.001 \
    --out=$OUT/atomic_no_decoder_lr001 --adopt=$R/TIGER-Beauty-Dec-06-2026_03-28-11-dbf5ba.json
  ;;
atomic_no_decoder_input_norm)  # atomic_no_decoder with the history's input embeddings normalised,
  # two seeds
  atomic_no_decoder_models --set TIGER:input_norm=True --seeds=2020,2021 --out=$OUT/atomic_no_decoder_input_norm \
    --adopt=$(records $R/TIGER-Beauty-Dec-06-2026_03-50-47-1cc51f.json $R/TIGER-Beauty-Dec-06-2026_05-26-21-c879ed.json)
  ;;
atomic_no_decoder_sasrec_dropout)  # atomic_no_decoder (dropout 0.1) with SASRec's placement
  atomic_no_decoder_models --set TIGER:final_dropout=False \
    --out=$OUT/atomic_no_decoder_sasrec_dropout --adopt=$R/TIGER-Beauty-Dec-06-2026_02-10-49-ed98bd.json
  ;;
tiger_last_item)  # tiger_no_dead_code_reset (same stage 1, seed, T5 overlay, untied) with
  # decoder_start: last_item
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 --config_files=$C,$T5 \
    --set TIGER:dead_code_reset=0 --set TIGER:decoder_start=last_item \
    --set TIGER:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-05-2026_00-02-27-bd21c1-tokenizer.pth \
    --out=$OUT/tiger_last_item --adopt=$R/TIGER-Beauty-Dec-05-2026_17-07-51-221f49.json
  ;;
tiger_last_item_input_norm)  # TIGER as table2_current's seed 2020 (overlay T5 on C) with
  # decoder_start: last_item and input_norm: True, training its own 500-epoch stage 1 (1ee18b,
  # this machine; 2789bc's stage 1 7fec8b was made by the same command on another)
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 --config_files=$C,$T5 \
    --set TIGER:decoder_start=last_item --set TIGER:input_norm=True \
    --out=$OUT/tiger_last_item_input_norm --adopt=$R/TIGER-Beauty-Dec-06-2026_05-02-37-1ee18b.json
  ;;
tiger_history_item)  # tiger_last_item_input_norm with one encoder position per history item
  # (history_tokens: item), on 1ee18b's stage 1 loaded instead of retrained
  python3 run_recbole_bbq.py --no_training --models=TIGER --dataset=Beauty --seeds=2020 --config_files=$C,$T5 \
    --set TIGER:decoder_start=last_item --set TIGER:input_norm=True --set TIGER:history_tokens=item \
    --set TIGER:tokenizer_checkpoint=saved/TIGER-Beauty-Dec-06-2026_05-02-37-1ee18b-tokenizer.pth \
    --out=$OUT/tiger_history_item --adopt=$R/TIGER-Beauty-Dec-06-2026_08-43-18-87082b.json
  ;;
bbqrec_last_item)  # BBQRec as in table4_tied (tied, 20 epochs, stage 1 1fa13c at seed 2020; 978f3b
  # at 2021) with decoder_start: last_item
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020,2021 --config_files=$C \
    $(before_6dec BBQRec) --set BBQRec@2020:tokenizer_checkpoint=$BBQ_TOK_2020 \
    --set BBQRec@2021:tokenizer_checkpoint=$BBQ_TOK_2021 \
    --set BBQRec:decoder_start=last_item --epochs=20 --time_budget_minutes=75 --out=$OUT/bbqrec_last_item \
    --adopt=$(records $R/BBQRec-Beauty-Dec-05-2026_17-32-30-8565a7.json $R/BBQRec-Beauty-Dec-05-2026_18-15-23-0b8bb1.json)
  ;;
bbqrec_last_item_57e586)  # bbqrec_last_item's seed 2020 again, on stage 1
  # 57e586 (the same seed and command as 1fa13c, another machine, other IDs)
  bbqrec_last_item_57e586_models --out=$OUT/bbqrec_last_item_57e586 \
    --adopt=$R/BBQRec-Beauty-Dec-05-2026_22-45-53-b9b1e4.json
  ;;
bbqrec_last_item_inherit)  # bbqrec_last_item_57e586 with the generator's token embeddings
  # inherited from the codebooks (inherit_codebook_embeddings: True)
  bbqrec_last_item_57e586_models --set BBQRec:inherit_codebook_embeddings=True --out=$OUT/bbqrec_last_item_inherit \
    --adopt=$R/BBQRec-Beauty-Dec-05-2026_23-58-59-1d3480.json
  ;;
bbqrec_last_item_inherit_sasrec_dropout)  # bbqrec_last_item_inherit with SASRec's dropout
  # placement (final_dropout: False)
  bbqrec_last_item_57e586_models --set BBQRec:inherit_codebook_embeddings=True --set BBQRec:final_dropout=False \
    --out=$OUT/bbqrec_last_item_inherit_sasrec_dropout --adopt=$R/BBQRec-Beauty-Dec-06-2026_02-48-06-8ada3d.json
  ;;
bbqrec_last_item_inherit_input_norm)  # bbqrec_last_item_inherit with the history's input
  # embeddings normalised (input_norm: True); stopped once and resumed from its -latest
  # checkpoint
  bbqrec_last_item_57e586_models "${BBQ_INHERIT_NORM[@]}" --out=$OUT/bbqrec_last_item_inherit_input_norm --adopt=$R/BBQRec-Beauty-Dec-06-2026_04-43-51-d01647.json
  ;;
bbqrec_last_item_input_norm)  # bbqrec_last_item_inherit_input_norm without the inherited
  # codebook embeddings (Table 4's BBQRec at the last-item + input_norm recipe)
  bbqrec_last_item_57e586_models --set BBQRec:input_norm=True --out=$OUT/bbqrec_last_item_input_norm \
    --adopt=$R/BBQRec-Beauty-Dec-06-2026_07-31-40-16e346.json
  ;;
bbqrec_input_norm_seeds)  # bbqrec_last_item_inherit_input_norm at two seeds: 2020 on stage 1
  # 57e586, 2021 training its own 2-epoch stage 1 in the same command (2bb80c)
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020,2021 --config_files=$C \
    $(before_6dec BBQRec) --set BBQRec@2020:tokenizer_checkpoint=$BBQ_TOK_2020_57E586 \
    --set BBQRec@2021:tokenizer_epochs=2 --set BBQRec@2021:tokenizer_eval_step=1 \
    --set BBQRec:decoder_start=last_item "${BBQ_INHERIT_NORM[@]}" --epochs=20 --time_budget_minutes=75 --out=$OUT/bbqrec_input_norm_seeds \
    --adopt=$(records $R/BBQRec-Beauty-Dec-06-2026_04-43-51-d01647.json $R/BBQRec-Beauty-Dec-06-2026_05-37-05-2bb80c.json)
  ;;
bbqrec_start_every_level)  # bbqrec_last_item_inherit_input_norm without decoder layers, the
  # start added to every decoder position (start_every_level: True)
  bbqrec_last_item_57e586_models "${BBQ_INHERIT_NORM[@]}" --set BBQRec:n_decoder_layers=0 --set BBQRec:start_every_level=True --out=$OUT/bbqrec_start_every_level \
    --adopt=$R/BBQRec-Beauty-Dec-06-2026_06-31-22-5f66e6.json
  ;;
bbqrec_history_item)  # bbqrec_last_item_inherit_input_norm with one encoder position per
  # history item (history_tokens: item)
  bbqrec_last_item_57e586_models "${BBQ_INHERIT_NORM[@]}" --set BBQRec:history_tokens=item --out=$OUT/bbqrec_history_item \
    --adopt=$R/BBQRec-Beauty-Dec-06-2026_08-15-53-279494.json
  ;;
bbqrec_history_item_no_decoder)  # bbqrec_history_item without decoder layers, the start added
  # to every decoder position (bbqrec_start_every_level's readout)
  bbqrec_last_item_57e586_models "${BBQ_INHERIT_NORM[@]}" --set BBQRec:history_tokens=item \
    --set BBQRec:n_decoder_layers=0 --set BBQRec:start_every_level=True --out=$OUT/bbqrec_history_item_no_decoder \
    --adopt=$R/BBQRec-Beauty-Dec-06-2026_09-28-34-750020.json
  ;;
bbqrec_history_item_no_inherit)  # bbqrec_history_item without the inherited codebook
  # embeddings (Table 4's BBQRec at the one-position-per-item recipe; 279494 is its BBQRec_E)
  bbqrec_last_item_57e586_models --set BBQRec:input_norm=True --set BBQRec:history_tokens=item \
    --out=$OUT/bbqrec_history_item_no_inherit --adopt=$R/BBQRec-Beauty-Dec-06-2026_09-54-14-6767b3.json
  ;;
bbqrec_history_item_seeds)  # bbqrec_history_item at two seeds: 2020 on stage 1 57e586, 2021 on
  # bbqrec_input_norm_seeds' seed-2021 stage 1 (2bb80c's, loaded), against SASRec's two seeds
  python3 run_recbole_bbq.py --no_training --models=SASRec,BBQRec --dataset=Beauty --seeds=2020,2021 \
    --model_config SASRec:$S --set SASRec:time_budget_minutes=75 --model_config BBQRec:$C $(before_6dec BBQRec) \
    --set BBQRec@2020:tokenizer_checkpoint=$BBQ_TOK_2020_57E586 \
    --set BBQRec@2021:tokenizer_checkpoint=$BBQ_TOK_2021_2BB80C \
    --set BBQRec:decoder_start=last_item "${BBQ_INHERIT_NORM[@]}" --set BBQRec:history_tokens=item \
    --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 --out=$OUT/bbqrec_history_item_seeds \
    --adopt=$(records $R/SASRec-Beauty-Dec-04-2026_21-38-47-5f6461.json $R/SASRec-Beauty-Dec-04-2026_22-21-37-e5d735.json \
      $R/BBQRec-Beauty-Dec-06-2026_08-15-53-279494.json $R/BBQRec-Beauty-Dec-06-2026_08-58-00-f4bfe9.json)
  ;;
table2_history_item)  # table2_current with BBQRec at its defaults of 6 Dec (a position per history
  # item, last-item start, input norm): seed 2020 on stage 1 57e586 (bbqrec_history_item_no_inherit's
  # run), 2021 on 2bb80c's; the other models' records as in table2_current
  table2_models \
    --set BBQRec@2020:tokenizer_checkpoint=$BBQ_TOK_2020_57E586 \
    --set BBQRec@2021:tokenizer_checkpoint=$BBQ_TOK_2021_2BB80C \
    --set BBQRec:epochs=20 --set BBQRec:time_budget_minutes=75 --out=$OUT/table2_history_item \
    --adopt=$(records "${TABLE2_OTHERS[@]}" \
      $R/BBQRec-Beauty-Dec-06-2026_09-54-14-6767b3.json $R/BBQRec-Beauty-Dec-06-2026_11-34-14-3bb4b3.json)
  ;;
table3_history_item)  # Table 3 at BBQRec's defaults of 6 Dec, seed 2020: noMIM trained its own
  # 2-epoch stage 1 (5f82d1), noRec on table3_tied's 2-epoch stage 1 (e3a971, loaded), noU on
  # table3_tied's (f55525, loaded; stopped after epoch 6 and resumed from its
  # -latest checkpoint), BBQRec on 57e586 (6767b3)
  A="tokenizer_epochs=2"; E="tokenizer_eval_step=1"
  python3 run_recbole_bbq.py --no_training --preset=table3 --models=BBQRec_noMIM,BBQRec_noRec,BBQRec_noU,BBQRec \
    --dataset=Beauty --seeds=2020 --config_files=$C \
    --set BBQRec:tokenizer_checkpoint=$BBQ_TOK_2020_57E586 --set BBQRec_noMIM:$A --set BBQRec_noMIM:$E \
    --set BBQRec_noRec:tokenizer_checkpoint=saved/BBQRec_noRec-Beauty-Dec-05-2026_19-53-01-e3a971-tokenizer.pth \
    --set BBQRec_noU:tokenizer_checkpoint=saved/BBQRec_noU-Beauty-Dec-05-2026_21-10-01-f55525-tokenizer.pth \
    --epochs=20 --time_budget_minutes=75 --out=$OUT/table3_history_item \
    --adopt=$(records $R/BBQRec_noMIM-Beauty-Dec-06-2026_13-53-15-5f82d1.json $R/BBQRec_noRec-Beauty-Dec-06-2026_12-20-37-1ef923.json \
      $R/BBQRec_noU-Beauty-Dec-06-2026_13-26-32-4c3006.json $R/BBQRec-Beauty-Dec-06-2026_09-54-14-6767b3.json)
  ;;
table3_history_item_seeds)  # table3_history_item at two seeds: 2020 as there, 2021 with noMIM, noRec
  # and noU each on its own 2-epoch stage 1 (d39450, ab650c, d223f0) and BBQRec on 2bb80c (3bb4b3)
  A="tokenizer_epochs=2"; E="tokenizer_eval_step=1"
  python3 run_recbole_bbq.py --no_training --preset=table3 --models=BBQRec_noMIM,BBQRec_noRec,BBQRec_noU,BBQRec \
    --dataset=Beauty --seeds=2020,2021 --config_files=$C --set BBQRec_noMIM:$A --set BBQRec_noMIM:$E \
    --set BBQRec@2020:tokenizer_checkpoint=$BBQ_TOK_2020_57E586 --set BBQRec@2021:tokenizer_checkpoint=$BBQ_TOK_2021_2BB80C \
    --set BBQRec_noRec@2020:tokenizer_checkpoint=saved/BBQRec_noRec-Beauty-Dec-05-2026_19-53-01-e3a971-tokenizer.pth \
    --set BBQRec_noRec@2021:$A --set BBQRec_noRec@2021:$E \
    --set BBQRec_noU@2020:tokenizer_checkpoint=saved/BBQRec_noU-Beauty-Dec-05-2026_21-10-01-f55525-tokenizer.pth \
    --set BBQRec_noU@2021:$A --set BBQRec_noU@2021:$E \
    --epochs=20 --time_budget_minutes=75 --out=$OUT/table3_history_item_seeds \
    --adopt=$(records $R/BBQRec_noMIM-Beauty-Dec-06-2026_13-53-15-5f82d1.json $R/BBQRec_noMIM-Beauty-Dec-06-2026_17-14-10-d39450.json \
      $R/BBQRec_noRec-Beauty-Dec-06-2026_12-20-37-1ef923.json $R/BBQRec_noRec-Beauty-Dec-06-2026_18-45-37-ab650c.json \
      $R/BBQRec_noU-Beauty-Dec-06-2026_13-26-32-4c3006.json $R/BBQRec_noU-Beauty-Dec-06-2026_16-17-05-d223f0.json \
      $R/BBQRec-Beauty-Dec-06-2026_09-54-14-6767b3.json $R/BBQRec-Beauty-Dec-06-2026_11-34-14-3bb4b3.json)
  ;;
bbqrec_first_level_items)  # bbqrec_history_item_no_inherit (BBQRec at its defaults of 6 Dec, seed
  # 2020, stage 1 57e586) with each level-1 token scored against its items' mean embedding
  # (first_level_embeddings: items); stopped after epoch 9 and resumed from its -latest checkpoint
  bbqrec_last_item_57e586_models --set BBQRec:input_norm=True --set BBQRec:history_tokens=item \
    --set BBQRec:first_level_embeddings=items --out=$OUT/bbqrec_first_level_items \
    --adopt=$R/BBQRec-Beauty-Dec-06-2026_12-45-25-28bc34.json
  ;;
table4_history_item)  # Table 4 at BBQRec's defaults of 6 Dec (a position per history item,
  # last-item start, input norm), seed 2020, all three on stage 1 57e586 (BBQRec is
  # bbqrec_history_item_no_inherit's run; S and E spelled the three keys out)
  python3 run_recbole_bbq.py --no_training --preset=table4 --dataset=Beauty --seeds=2020 --config_files=$C \
    --tokenizer_checkpoint=$BBQ_TOK_2020_57E586 --epochs=20 --time_budget_minutes=75 --out=$OUT/table4_history_item \
    --adopt=$(records $R/BBQRec_S-Beauty-Dec-06-2026_10-30-45-04474a.json $R/BBQRec_E-Beauty-Dec-06-2026_11-07-53-a43c1c.json \
      $R/BBQRec-Beauty-Dec-06-2026_09-54-14-6767b3.json)
  ;;
bbqrec_40_epochs)  # BBQRec at its defaults of 6 Dec (seed 2020, stage 1 57e586) with the cosine over
  # 40 epochs instead of 20; early stopping (stopping_step 3) ended it after 22
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    --set BBQRec:tokenizer_checkpoint=$BBQ_TOK_2020_57E586 --epochs=40 --time_budget_minutes=75 \
    --out=$OUT/bbqrec_40_epochs --adopt=$R/BBQRec-Beauty-Dec-06-2026_14-59-06-582b22.json
  ;;
bbqrec_sasrec_schedule)  # BBQRec at its defaults of 6 Dec (seed 2020) on SASRec's schedule: the cosine
  # over 40 epochs with patience 5; its own 2-epoch stage 1 (the same IDs as 1fa13c)
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    --set BBQRec:tokenizer_epochs=2 --set BBQRec:tokenizer_eval_step=1 --epochs=40 --stopping_step=5 \
    --time_budget_minutes=75 --out=$OUT/bbqrec_sasrec_schedule --adopt=$R/BBQRec-Beauty-Dec-06-2026_19-43-52-dcc1e5.json
  ;;
bbqrec_sasrec_schedule_control)  # bbqrec_sasrec_schedule's control: the same stage 1 (dcc1e5's), the
  # 20-epoch cosine of BBQRec's recipe (run cb157e, resumed after epoch 0 as bb61ac)
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    --set BBQRec:tokenizer_checkpoint=$BBQ_TOK_2020_DCC1E5 --epochs=20 --time_budget_minutes=75 \
    --out=$OUT/bbqrec_sasrec_schedule_control --adopt=$R/BBQRec-Beauty-Dec-06-2026_21-17-17-bb61ac.json
  ;;
bbqrec_commitment_0)  # BBQRec at its defaults of 6 Dec (seed 2020) with the commitment term off in
  # stage 1 (alpha = 0; text codes 48/57/52 % instead of 28/36/32 %), its own 2-epoch stage 1
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    --set BBQRec:tokenizer_epochs=2 --set BBQRec:tokenizer_eval_step=1 --set BBQRec:commitment=0 --epochs=20 \
    --time_budget_minutes=75 --out=$OUT/bbqrec_commitment_0 --adopt=$R/BBQRec-Beauty-Dec-06-2026_22-27-27-8105d8.json
  ;;
bbqrec_tokenizer_6_epochs)  # BBQRec at its defaults of 6 Dec (seed 2020) on its own 6-epoch stage 1
  # instead of 2 (whose first 2 epochs repeat dcc1e5's stage 1; compare with bbqrec_sasrec_schedule_control)
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    --set BBQRec:tokenizer_epochs=6 --set BBQRec:tokenizer_eval_step=1 --epochs=20 \
    --time_budget_minutes=75 --out=$OUT/bbqrec_tokenizer_6_epochs --adopt=$R/BBQRec-Beauty-Dec-07-2026_01-03-27-ece074.json
  ;;
table4_history_item_seeds)  # table4_history_item at two seeds: 2020 on stage 1 57e586 (04474a, a43c1c,
  # 6767b3), 2021 on 2bb80c's (2b1eba, f387eb, 3bb4b3)
  python3 run_recbole_bbq.py --no_training --preset=table4 --dataset=Beauty --seeds=2020,2021 --config_files=$C \
    --tokenizer_checkpoint=$BBQ_TOK_2020_57E586 --set BBQRec_S@2021:tokenizer_checkpoint=$BBQ_TOK_2021_2BB80C \
    --set BBQRec_E@2021:tokenizer_checkpoint=$BBQ_TOK_2021_2BB80C --set BBQRec@2021:tokenizer_checkpoint=$BBQ_TOK_2021_2BB80C \
    --epochs=20 --time_budget_minutes=75 --out=$OUT/table4_history_item_seeds \
    --adopt=$(records $R/BBQRec_S-Beauty-Dec-06-2026_10-30-45-04474a.json $R/BBQRec_E-Beauty-Dec-06-2026_11-07-53-a43c1c.json \
      $R/BBQRec-Beauty-Dec-06-2026_09-54-14-6767b3.json $R/BBQRec_S-Beauty-Dec-06-2026_15-35-37-2b1eba.json \
      $R/BBQRec_E-Beauty-Dec-06-2026_14-33-16-f387eb.json $R/BBQRec-Beauty-Dec-06-2026_11-34-14-3bb4b3.json)
  ;;
table4_e_seeds)  # BBQRec_E against BBQRec at BBQRec's defaults of 6 Dec, two seeds, each seed's pair
  # on one stage 1 (2020: 57e586, a43c1c and 6767b3; 2021: 2bb80c, f387eb and 3bb4b3). BBQRec_S at
  # 2021 is not run yet; with it this becomes table4_history_item at --seeds=2020,2021
  python3 run_recbole_bbq.py --no_training --models=BBQRec_E,BBQRec --dataset=Beauty --seeds=2020,2021 \
    --config_files=$C --set BBQRec_E@2020:tokenizer_checkpoint=$BBQ_TOK_2020_57E586 \
    --set BBQRec@2020:tokenizer_checkpoint=$BBQ_TOK_2020_57E586 \
    --set BBQRec_E@2021:tokenizer_checkpoint=$BBQ_TOK_2021_2BB80C \
    --set BBQRec@2021:tokenizer_checkpoint=$BBQ_TOK_2021_2BB80C \
    --epochs=20 --time_budget_minutes=75 --out=$OUT/table4_e_seeds \
    --adopt=$(records $R/BBQRec_E-Beauty-Dec-06-2026_11-07-53-a43c1c.json $R/BBQRec_E-Beauty-Dec-06-2026_14-33-16-f387eb.json \
      $R/BBQRec-Beauty-Dec-06-2026_09-54-14-6767b3.json $R/BBQRec-Beauty-Dec-06-2026_11-34-14-3bb4b3.json)
  ;;
letter_last_item)  # LETTER as table2_current's seed 2020 (stage 1 61cf6d, overlay T5 on C) with
  # decoder_start: last_item
  python3 run_recbole_bbq.py --no_training --models=LETTER --dataset=Beauty --seeds=2020 --config_files=$C,$T5 \
    $LETTER_STAGE1 \
    --set LETTER:tokenizer_checkpoint=saved/LETTER-Beauty-Dec-04-2026_18-36-59-61cf6d-tokenizer.pth \
    --set LETTER:decoder_start=last_item --out=$OUT/letter_last_item \
    --adopt=$R/LETTER-Beauty-Dec-05-2026_19-07-31-39a729.json
  ;;
bbqrec_lr001)  # BBQRec as in table4_tied (tied, seed 2020, stage 1 1fa13c) at peak rate 0.001;
  # stopped once and resumed from its -latest checkpoint
  python3 run_recbole_bbq.py --no_training --models=BBQRec --dataset=Beauty --seeds=2020 --config_files=$C \
    $(before_6dec BBQRec) --set BBQRec:tokenizer_checkpoint=$BBQ_TOK_2020 \
    --set BBQRec:learning_rate=0.001 --epochs=20 --time_budget_minutes=75 --out=$OUT/bbqrec_lr001 \
    --adopt=$R/BBQRec-Beauty-Dec-05-2026_16-44-13-15438b.json
  ;;
*)
  # the cases are this script's own labels, so the list cannot fall behind them
  echo "usage: bash $0 $(grep -oE '^[a-z0-9_]+\)' "$0" | tr -d ')' | paste -sd'|')" >&2; exit 2 ;;
esac
