"""Fine-tuning: LoRA and QLoRA on a survey's train split with the numeric-distance loss."""
