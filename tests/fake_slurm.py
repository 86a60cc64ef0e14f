"""A stand-in SLURM for the launcher tests: `sbatch`, `srun`, `sacct` and `scancel` as small scripts on PATH that
run a job's tasks as local processes with the environment SLURM gives them.

Why by hand: no SLURM test double ships with submitit, and installing slurmctld is out of reach of a test. The
shims cover exactly what submitit's SLURM executor uses: `sbatch SCRIPT` answers "Submitted batch job N" and runs
a copy of the script in the background (as SLURM does: submitit moves the script away right after submitting it),
once per task of its `#SBATCH --array=A-B%P` if it has one (submitit submits a single job without an array), each
as `bash COPY` with SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID, ... set; `srun --output F --error G
CMD` runs CMD with F and G's %A/%a/%j/%t patterns filled in; `sacct ... --parsable2 -j N` reports each job's or
task's state (PENDING, RUNNING, COMPLETED, FAILED); `scancel` does nothing. Every submitted script is
kept as `<state dir>/<N>.sbatch` for the test to read.
"""

from __future__ import annotations

import os
import stat
import sys

FIRST_JOB_ID = 4000

_SBATCH = r'''
import os, re, subprocess, sys
state = os.environ["FAKE_SLURM_STATE"]
if sys.argv[1] == "--run-task":  # the background runner of one job, or one task of an array ("-": not an array)
    job, task, script = sys.argv[2], sys.argv[3], sys.argv[4]
    name = job if task == "-" else f"{job}_{task}"
    def mark(s):
        with open(os.path.join(state, name + ".state"), "w") as f:
            f.write(s)
    env = dict(os.environ, SLURM_JOB_ID=job, SLURM_NTASKS="1", SLURM_JOB_NUM_NODES="1", SLURM_NODEID="0",
               SLURM_JOB_NODELIST="localhost", SLURM_PROCID="0", SLURM_LOCALID="0")
    if task != "-":
        env.update(SLURM_JOB_ID=str(int(job) * 1000 + int(task)), SLURM_ARRAY_JOB_ID=job, SLURM_ARRAY_TASK_ID=task)
    mark("RUNNING")
    code = subprocess.call(["bash", script], env=env)
    mark("COMPLETED" if code == 0 else "FAILED")
    sys.exit(0)
script = sys.argv[-1]
text = open(script).read()
job = str(FIRST_JOB_ID + len([n for n in os.listdir(state) if n.endswith(".sbatch")]))
copy = os.path.join(state, job + ".sbatch")  # SLURM runs its own copy: submitit moves the script once it is queued
with open(copy, "w") as f:
    f.write(text)
array = re.search(r"^#SBATCH --array=(\d+)-(\d+)", text, re.M)
tasks = [str(t) for t in range(int(array[1]), int(array[2]) + 1)] if array else ["-"]
for task in tasks:
    with open(os.path.join(state, (job if task == "-" else f"{job}_{task}") + ".state"), "w") as f:
        f.write("PENDING")
    subprocess.Popen([sys.executable, __file__, "--run-task", job, task, copy], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"Submitted batch job {job}")
'''

_SRUN = r'''
import os, subprocess, sys
args, files = sys.argv[1:], {}
while args and args[0].startswith("-"):
    flag = args.pop(0)
    if flag in ("--output", "--error"):
        path = args.pop(0)
        for pattern, var in (("%A", "SLURM_ARRAY_JOB_ID"), ("%a", "SLURM_ARRAY_TASK_ID"), ("%j", "SLURM_JOB_ID"),
                             ("%t", "SLURM_PROCID")):
            if var in os.environ:
                path = path.replace(pattern, os.environ[var])
        # a real queue starts a job well after sbatch returns, by when submitit has made the job's folder; these
        # tasks start at once, so on a loaded machine the folder may not exist yet (submitit waits for its pickle)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        files[flag] = open(path, "a")
out = files.get("--output")
sys.exit(subprocess.call(args, stdout=out, stderr=files.get("--error", out)))
'''

_SACCT = r'''
import os, sys
state = os.environ["FAKE_SLURM_STATE"]
jobs = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "-j"]
print("JobID|State|NodeList")
for name in sorted(os.listdir(state)):
    if name.endswith(".state") and name[:-len(".state")].split("_")[0] in jobs:
        with open(os.path.join(state, name)) as f:
            print(f"{name[:-len('.state')]}|{f.read()}|localhost")
'''

_SCANCEL = "import sys\nsys.exit(0)\n"


def install(directory: str) -> tuple[str, str]:
    """Write the shims into ``directory``/bin; returns (bin directory for PATH, state directory for
    FAKE_SLURM_STATE)."""
    bin_dir, state_dir = os.path.join(directory, "bin"), os.path.join(directory, "state")
    os.makedirs(bin_dir, exist_ok=True)
    os.makedirs(state_dir, exist_ok=True)
    shims = {"sbatch": _SBATCH.replace("FIRST_JOB_ID", str(FIRST_JOB_ID)), "srun": _SRUN, "sacct": _SACCT,
             "scancel": _SCANCEL}
    for name, body in shims.items():
        path = os.path.join(bin_dir, name)
        with open(path, "w") as f:
            f.write(f"#!{sys.executable}\n{body}")
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return bin_dir, state_dir
