"""Developer tools that keep the repository in shape (the import graph behind dvc.yaml's code deps)."""
