"""Synthetic patients: a deterministic, clinically coherent FHIR R4 (US Core 7) dataset.

    ds = generate_dataset(patients=25, seed=DEFAULT_SEED)
    write_dataset(ds, "seed_data")          # NDJSON per type + manifest.json + README.md
    resources = load_dataset_dir("seed_data")
"""

from mockehr.synth.generator import DEFAULT_PATIENTS, DEFAULT_SEED, Dataset, generate_dataset
from mockehr.synth.writer import load_dataset_dir, write_dataset

__all__ = ["DEFAULT_PATIENTS", "DEFAULT_SEED", "Dataset", "generate_dataset", "load_dataset_dir", "write_dataset"]
