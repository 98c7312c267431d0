"""Train and evaluate a recbole_bbq or RecBole model.

    python run_recbole_bbq.py --model=TIGER --dataset=Beauty [--config_files=a.yaml,b.yaml] [--key=value ...]
"""
from recbole_bbq.quick_start import main

if __name__ == "__main__":
    main()
