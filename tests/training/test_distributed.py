"""Multi-replica training: 2 logical CPUs vs one device, and 2 worker processes on localhost."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import script_env

HERE = Path(__file__).resolve().parent


def run_json(*args, env=None, **extra_env):
    env = dict(env or script_env(), **extra_env)
    r = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env or script_env(), timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_two_replicas_equal_single_device_plain_loss():
    out = run_json(HERE / "replica_check.py", "plain")
    assert out["moved"] > 1e-3  # training changed the weights
    assert out["replica_spread"] == 0.0  # replicas agree, BN statistics included
    assert out["diff_vs_single"] < 1e-5  # same weights as one device with the same global batch


def test_two_replicas_with_xla_equal_single_device():
    out = run_json(HERE / "replica_check.py", "plain", JIT="1")
    assert out["moved"] > 1e-3 and out["replica_spread"] == 0.0
    assert out["diff_vs_single"] < 1e-5


def test_two_replicas_in_bfloat16_agree_and_follow_single_device():
    out = run_json(HERE / "replica_check.py", "plain", PRECISION="bfloat16")
    assert out["moved"] > 1e-3 and out["replica_spread"] == 0.0
    assert out["diff_vs_single"] < 0.1 * out["moved"]  # bfloat16 rounding of half vs whole batches


def test_two_replicas_with_head_and_l2_equal_per_replica_batchnorm():
    out = run_json(HERE / "replica_check.py", "head")
    assert out["moved"] > 1e-3 and out["replica_spread"] == 0.0
    # equal to one device whose BN normalises each replica's half separately ...
    assert out["trainable_diff_vs_emulation"] < 1e-5
    # ... which really differs from full-batch BN (the comparison is sensitive)
    assert out["diff_vs_single_full_batch"] > 1e-4


def test_two_replicas_pair_loss_on_the_global_batch_equal_single_device():
    out = run_json(HERE / "replica_check.py", "contrastive")
    assert out["moved"] > 1e-3 and out["replica_spread"] == 0.0
    assert out["diff_vs_single"] < 1e-5
    local = run_json(HERE / "replica_check.py", "contrastive_local")
    assert local["diff_vs_single"] > 1e-3  # a replica-local loss would differ: the comparison is sensitive


@pytest.mark.parametrize("mode", ["multi_similarity", "xbm", "proxy_anchor"])
def test_two_replicas_mined_and_proxy_losses_equal_single_device(mode):
    # MS mines on the gathered global batch (XBM: and every replica enqueues it); Proxy-Anchor's proxies get
    # each replica's share of their gradient
    out = run_json(HERE / "replica_check.py", mode)
    assert out["moved"] > 1e-3 and out["replica_spread"] == 0.0
    assert out["diff_vs_single"] < 1e-5 * max(1.0, out["moved"])


@pytest.mark.parametrize("mode", ["avsl", "avsl_batch"])
def test_two_replicas_avsl_equals_single_device(mode):
    # AVSL (issue 12): level and final losses on the gathered batch, proxies and gates a, b at their share of
    # the gradient, link buffers the running mean of the global batch's link matrices
    out = run_json(HERE / "replica_check.py", mode)
    assert out["moved"] > 1e-3 and out["replica_spread"] == 0.0
    assert out["diff_vs_single"] < 1e-5 * max(1.0, out["moved"])


def test_two_replicas_two_models_two_optimizers_alternating_steps():
    out = run_json(HERE / "replica_check.py", "probe")
    assert out["moved_min"] > 1e-3 and out["replica_spread"] == 0.0
    assert out["diff_vs_single"] < 1e-5 * max(1.0, out["moved"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_two_processes_on_localhost(tmp_path):
    ports = [free_port(), free_port()]
    procs = []
    for i in range(2):
        env = script_env()
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
        )
        procs.append(subprocess.Popen([sys.executable, str(HERE / "multiworker_check.py"), str(tmp_path / f"w{i}.npz")],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=300)[0])
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
        assert "worker done 2 3" in out  # 2 replicas in sync, 3 steps
    a, b = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    weights = [k for k in a.files if k.startswith("arr_")]
    assert len(weights) > 4
    for k in weights:
        np.testing.assert_array_equal(a[k], b[k])
    assert float(a["loss"]) == pytest.approx(float(b["loss"]))
