#!/bin/bash
# Alternating CPU comparison, old agent (b0f1a35, /tmp/old worktree) vs new (working tree), identical flags.
. /work/main/.venv/bin/activate
FLAGS="--env-id HalfCheetah-v5 --total-timesteps 3000 --learning-starts 1000 --hidden-dim 256 --updates-per-step 1 --eval-every 0 --eval-episodes 1 --log-every 500 --no-cuda --no-progress --seed 1"
rm -rf /tmp/speed/runs; mkdir -p /tmp/speed/runs
export OMP_NUM_THREADS=1
for rep in 1 2 3; do
  (cd /tmp/old && PYTHONPATH=/tmp/old python /tmp/old/agents/sac_era.py $FLAGS --log-dir /tmp/speed/runs --run-name old$rep) > /tmp/speed/old$rep.log 2>&1
  (cd /work/main && python agents/sac_era.py $FLAGS --log-dir /tmp/speed/runs --run-name new$rep) > /tmp/speed/new$rep.log 2>&1
done
echo done
