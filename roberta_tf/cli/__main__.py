"""`python -m roberta_tf.cli SUBCOMMAND [flags]`, the same as the `roberta-tf` script."""

from roberta_tf.cli.main import run

if __name__ == "__main__":
    run()
