"""Studies: collate the evaluation and fine-tuning outputs of several conditions and seeds into a report."""
