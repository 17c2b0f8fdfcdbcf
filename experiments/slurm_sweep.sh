#!/bin/bash
# One sweep over a SLURM job array: each array task trains its share of the chunks
# into the shared run folder; the last to finish writes members.csv, the report and
# the figures.
#
#   sbatch --array=0-7 experiments/slurm_sweep.sh experiments/configs/digits.toml runs/digits
#
# The shard (I/P) comes from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT. A task
# that fails can be resubmitted alone (sbatch --array=3 ...): it trains only what is
# missing. `jaxbp sweep CONFIG --out DIR --finish` assembles a folder by hand.
#SBATCH --job-name=jaxbp-sweep
#SBATCH --cpus-per-task=8
#SBATCH --time=02:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
config=${1:?usage: sbatch --array=0-N slurm_sweep.sh CONFIG.toml RUN_FOLDER}
out=${2:?usage: sbatch --array=0-N slurm_sweep.sh CONFIG.toml RUN_FOLDER}
# One JAX CPU device per core this task was given (use_cpu_cores reads the affinity).
exec jaxbp sweep "$config" --out "$out" --no-progress
