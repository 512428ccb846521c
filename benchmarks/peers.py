"""Steps per second against the peers at equal settings: CleanRL's single-file SAC and PPO, and SB3.

SAC (CleanRL's network: 2x256 ReLU, no LayerNorm, batch 256, one update per step, the same random warm-up):
CleanRL's ``sac_continuous_action.py``; ``agents/sac_era.py --no-era`` and ``agents/sac_era.py`` with
``--activation relu --no-critic-layer-norm --hidden-dim 256 --updates-per-step 1``, eager and with ``--compile``;
stock SB3 ``SAC`` with the same network. PPO (2x64 tanh, 2048-step rollouts, 10 epochs of minibatch 64, normalised
observations and rewards): CleanRL's ``ppo_continuous_action.py``; ``agents/ppo_era.py --no-era``, eager and with
``--compile``; stock SB3 ``PPO``. Targets: the agents eager at least 1.2x SB3 and 1.0x CleanRL; with ``--compile``
at least 1.5x SB3. Every run is its own process with one thread, repeats interleaved, steps per second after a
burn-in read from each program's TensorBoard events (:func:`benchmarks.throughput.steps_per_second_after_burn_in`).

CleanRL is not part of this repository: pass a checkout (``git clone https://github.com/vwxyzjn/cleanrl``). Its
scripts target Gymnasium 0.29; the harness copies them into a temporary directory and applies :data:`CLEANRL_EDITS`
there (each edit names its reason, and the harness stops if the text it replaces is not found), and the results list
the edits and the CleanRL commit.

    python -m benchmarks.peers --cleanrl ~/src/cleanrl
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import torch
import tyro

from benchmarks import throughput
from benchmarks.aggregate import markdown_table
from benchmarks.provenance import REPO_ROOT, refuse_to_overwrite
from benchmarks.throughput import PPO_SB3_FLAGS, RunBudget, Variant, agent_command, contract_flags, sb3_command


@dataclass(frozen=True)
class Edit:
    """One textual edit of a CleanRL script: ``old`` (which must occur exactly once) becomes ``new``."""

    script: str
    old: str
    new: str
    reason: str


SAC_SCRIPT, PPO_SCRIPT = "sac_continuous_action.py", "ppo_continuous_action.py"
_EPISODES_HELPER = """from torch.utils.tensorboard import SummaryWriter


def _episode_infos(final_info):  # Gymnasium 1.x: one dict of arrays, finished sub-envs marked by "_episode"
    episode, finished = final_info.get("episode", {}), np.flatnonzero(final_info.get("_episode", []))
    return [{"episode": {"r": episode["r"][i], "l": episode["l"][i]}} for i in finished]
"""
_SAME_STEP = (
    "Gymnasium 1.x vector envs reset an episode on the step after it ends (next-step autoreset); CleanRL's loop "
)
_SAME_STEP += "expects the reset on the same step, as Gymnasium 0.29 did (and as the agents and SB3 run)"
_FINAL_INFO = "Gymnasium 1.x stacks the final infos into one dict of arrays (masked by `_episode`), not a list of dicts"
CLEANRL_EDITS: tuple[Edit, ...] = (
    Edit(SAC_SCRIPT, "from torch.utils.tensorboard import SummaryWriter\n", _EPISODES_HELPER, _FINAL_INFO),
    Edit(
        SAC_SCRIPT, 'for info in infos["final_info"]:', 'for info in _episode_infos(infos["final_info"]):', _FINAL_INFO
    ),
    Edit(
        SAC_SCRIPT,
        "for i in range(args.num_envs)]\n    )",
        "for i in range(args.num_envs)],\n        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,\n    )",
        _SAME_STEP,
    ),
    Edit(SAC_SCRIPT, 'infos["final_observation"][idx]', 'infos["final_obs"][idx]', "Gymnasium 1.x renamed the key"),
    Edit(PPO_SCRIPT, "from torch.utils.tensorboard import SummaryWriter\n", _EPISODES_HELPER, _FINAL_INFO),
    Edit(
        PPO_SCRIPT, 'for info in infos["final_info"]:', 'for info in _episode_infos(infos["final_info"]):', _FINAL_INFO
    ),
    Edit(
        PPO_SCRIPT,
        "for i in range(args.num_envs)]\n    )",
        "for i in range(args.num_envs)],\n        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,\n    )",
        _SAME_STEP,
    ),
    Edit(
        PPO_SCRIPT,
        "gym.wrappers.TransformObservation(env, lambda obs: np.clip(obs, -10, 10))",
        "gym.wrappers.TransformObservation(env, lambda obs: np.clip(obs, -10, 10), env.observation_space)",
        "Gymnasium 1.x's TransformObservation takes the new observation space as a required argument",
    ),
)
"""Every edit that CleanRL's SAC and PPO scripts need to run on Gymnasium 1.x (none changes the algorithm)."""


def patch_cleanrl(checkout: Path, destination: Path, edits: tuple[Edit, ...] = CLEANRL_EDITS) -> dict[str, Path]:
    """Copy CleanRL's scripts from ``checkout/cleanrl/`` into ``destination`` with ``edits`` applied.

    :return: ``{script name: patched copy}``.
    :raises FileNotFoundError: if ``checkout`` is not a CleanRL checkout (naming ``--cleanrl``).
    :raises ValueError: if the text an edit replaces does not occur exactly once (CleanRL changed: review the edit).
    """
    patched = {}
    for script in sorted({edit.script for edit in edits}):
        source = checkout / "cleanrl" / script
        if not source.is_file() or not (checkout / "cleanrl_utils").is_dir():
            raise FileNotFoundError(
                f"--cleanrl {checkout}: no cleanrl/{script} and cleanrl_utils/ (a CleanRL checkout)"
            )
        text = source.read_text()
        for edit in (edit for edit in edits if edit.script == script):
            if text.count(edit.old) != 1:
                raise ValueError(
                    f"{source}: the text to edit occurs {text.count(edit.old)} times, not once: {edit.old!r} "
                    f"({edit.reason}); this CleanRL version needs its edits reviewed"
                )
            text = text.replace(edit.old, edit.new)
        patched[script] = destination / script
        patched[script].write_text(text)
    return patched


@dataclass(kw_only=True)
class Args(RunBudget):
    cleanrl: Path
    """a CleanRL checkout (git clone https://github.com/vwxyzjn/cleanrl)"""
    modes: tuple[Literal["eager", "compile"], ...] = ("eager", "compile")
    """the agents' paths to time (CleanRL and SB3 run eager)"""
    results_dir: Path = REPO_ROOT / "benchmarks" / "results" / "peers"
    """where peers.csv and peers.md go"""
    overwrite: bool = False
    """replace the results already in --results-dir (without it, a run into a directory holding them stops)"""


CLEANRL_NAMES = {"sac": f"CleanRL {SAC_SCRIPT}", "ppo": f"CleanRL {PPO_SCRIPT}"}
SAC_CLEANRL_NETWORK = (
    "--activation",
    "relu",
    "--no-critic-layer-norm",
    "--hidden-dim",
    "256",
    "--updates-per-step",
    "1",
)
"""``agents/sac_era.py`` flags that build CleanRL's SAC network and update ratio."""


def variants(args: Args, scripts: dict[str, Path]) -> list[Variant]:
    """Per family: CleanRL, the agents (eager and compiled), stock SB3, at one setting."""
    rows = []
    for family in args.algorithms:
        burn_in, total = throughput.budget(family, args)
        device = "--cuda" if args.cuda else "--no-cuda"
        cleanrl = (sys.executable, str(scripts[SAC_SCRIPT if family == "sac" else PPO_SCRIPT]), "--env-id", args.env_id,
                   "--total-timesteps", str(total), "--seed", str(args.seed), device)  # fmt: skip
        if family == "sac":
            setting = "2x256 ReLU, no LayerNorm, batch 256, 1 update/step"
            cleanrl += ("--learning-starts", str(args.sac_learning_starts), "--batch-size", "256")
            agent = (*SAC_CLEANRL_NETWORK, "--learning-starts", str(args.sac_learning_starts), "--batch-size", "256")
            agent += ("--log-every", "500")
            sb3 = ("--net-arch", "256", "256", "--activation", "relu", "--batch-size", "256", "--train-freq", "1",
                   "--gradient-steps", "1", "--learning-starts", str(args.sac_learning_starts))  # fmt: skip
            agent_variants = ("--no-era", "--era")
        else:
            setting = "2x64 tanh, 2048-step rollouts, 10 epochs of minibatch 64"
            agent, sb3, agent_variants = (), PPO_SB3_FLAGS, ("--no-era",)
        common = contract_flags(total, args)
        rows.append(Variant(family, setting, CLEANRL_NAMES[family], cleanrl, burn_in, total,
                            pythonpath=(str(args.cleanrl),)))  # fmt: skip
        for mode in args.modes:
            mode_flags = () if mode == "eager" else ("--compile",)
            for era_flag in agent_variants:
                name = " ".join([f"agents/{family}_era.py", *([era_flag] if era_flag == "--no-era" else []),
                                 *mode_flags])  # fmt: skip
                command = agent_command(family, (*common, "--checkpoint-every", "0", *agent, era_flag, *mode_flags))
                rows.append(Variant(family, setting, name, command, burn_in, total))
        sb3_flags = (*common, "--algo", family, "--policy", "stock", *sb3)
        rows.append(Variant(family, setting, f"SB3 {family.upper()}", sb3_command(sb3_flags), burn_in, total))
    return rows


EAGER_VS_SB3, EAGER_VS_CLEANRL, COMPILED_VS_SB3 = 1.2, 1.0, 1.5


def target_cell(row: pd.Series) -> str:
    """The issue's targets for the agents' rows (met / missed); ``-`` for the peers themselves."""
    if not row["variant"].startswith("agents/"):
        return "-"
    if row["variant"].endswith("--compile"):
        return f"{'met' if row['ratio_to_sb3'] >= COMPILED_VS_SB3 else 'missed'}: >= {COMPILED_VS_SB3}x SB3"
    sb3 = f"{'met' if row['ratio_to_sb3'] >= EAGER_VS_SB3 else 'missed'}: >= {EAGER_VS_SB3}x SB3"
    cleanrl = row["ratio_to_cleanrl"] >= EAGER_VS_CLEANRL
    return f"{sb3}; {'met' if cleanrl else 'missed'}: >= {EAGER_VS_CLEANRL}x CleanRL"


def edit_lines(edit: Edit) -> list[str]:
    """One edit as Markdown: the script and the reason, then the change as a diff."""
    diff = [f"-{line}" for line in edit.old.strip("\n").splitlines()]
    diff += [f"+{line}" for line in edit.new.strip("\n").splitlines()]
    return [f"- `{edit.script}`: {edit.reason}.", "", "  ```diff", *(f"  {line}" for line in diff), "  ```", ""]


def cleanrl_commit(checkout: Path) -> str:
    result = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown (not a git checkout)"


def write_results(runs: pd.DataFrame, summary: pd.DataFrame, args: Args, command: str) -> str:
    """``peers.csv`` (every run) and ``peers.md`` (provenance, the table, the CleanRL edits)."""
    args.results_dir.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.results_dir / "peers.csv", index=False)
    table = markdown_table(
        ["Family", "Setting", "Variant", "Steps/s (median)", "Range", "vs SB3", "vs CleanRL", "Targets"],
        [
            [
                row["family"].upper(),
                row["setting"],
                row["variant"],
                f"{row['median']:.0f}",
                f"{row['min']:.0f}-{row['max']:.0f}",
                f"{row['ratio_to_sb3']:.2f}x",
                f"{row['ratio_to_cleanrl']:.2f}x",
                target_cell(row),
            ]
            for _, row in summary.iterrows()
        ],
    )
    edits = [line for edit in CLEANRL_EDITS for line in edit_lines(edit)]
    text = "\n".join(
        [
            "# Steps per second against CleanRL and SB3 at equal settings",
            "",
            *throughput.provenance_lines(command, "CUDA" if args.cuda else "CPU", args.threads),
            f"- **CleanRL:** commit `{cleanrl_commit(args.cleanrl)}`, run with the edits below",
            f"- **Setup:** {args.env_id}; SAC: {args.sac_total_timesteps} steps ({args.sac_learning_starts} random), "
            f"clock from step {args.sac_burn_in}; PPO: {args.ppo_total_timesteps} steps, clock from step "
            f"{args.ppo_burn_in}. Every run its own process; {args.repeats} interleaved repeats; steps per second "
            "between the first TensorBoard step logged at or after the burn-in and the last one before the end. "
            f"Targets: eager >= {EAGER_VS_SB3}x SB3 and >= {EAGER_VS_CLEANRL}x CleanRL; `--compile` >= "
            f"{COMPILED_VS_SB3}x SB3.",
            "",
            table,
            "",
            "## Edits to run CleanRL on Gymnasium 1.x",
            "",
            "Applied by `benchmarks/peers.py` to temporary copies of the scripts (none changes the algorithm):",
            "",
            *edits,
            "",
        ]
    )
    (args.results_dir / "peers.md").write_text(text)
    return text


def main(args: Args) -> None:
    args.check()
    if args.cuda and not torch.cuda.is_available():
        raise ValueError("--cuda: torch sees no CUDA device on this machine")
    command = " ".join(["python -m benchmarks.peers", *map(shlex.quote, sys.argv[1:])])
    refuse_to_overwrite(args.results_dir, ["peers.csv", "peers.md"], args.overwrite)
    references = {"ratio_to_sb3": {"sac": "SB3 SAC", "ppo": "SB3 PPO"}, "ratio_to_cleanrl": CLEANRL_NAMES}
    with tempfile.TemporaryDirectory(prefix="cleanrl-patched-") as scratch:
        table = variants(args, patch_cleanrl(args.cleanrl, Path(scratch)))
        runs = throughput.measure(table, args.repeats, args.threads, args.run_timeout_s)
    print(write_results(runs, throughput.summarize(runs, table, references), args, command))


if __name__ == "__main__":
    main(tyro.cli(Args))
