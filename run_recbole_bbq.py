"""Train and evaluate a recbole_bbq or RecBole model, or compare several side by side.

    python run_recbole_bbq.py --model=TIGER --dataset=Beauty [--config_files=a.yaml,b.yaml] [--key=value ...]
    python run_recbole_bbq.py --models=SASRec,TIGER,BBQRec --dataset=Beauty [--seeds=1,2,3] [--preset=table3]
"""
from recbole_bbq.cli import main

if __name__ == "__main__":
    main()
