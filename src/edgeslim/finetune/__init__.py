"""Fine-tuning: the `finetune` step (text classification, regression and SQuAD QA) on the one training loop."""
