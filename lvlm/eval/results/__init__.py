"""What an evaluation reports: point metrics (``metrics``), bootstrap confidence intervals
(``bootstrap``), the result files (``writer``) and Weights & Biases logging (``wandb_log``). Nothing is
re-exported."""
