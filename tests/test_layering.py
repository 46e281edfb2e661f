import subprocess
import sys


def test_importing_actmix_loads_no_orchestration_package():
    code = (
        "import sys, actmix; "
        "print(','.join(m for m in ('ray', 'optuna', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api():
    import actmix

    for name in ("load_dataset", "make_folds", "MLP", "fit", "cross_validate", "ActMixMLP"):
        assert name in actmix.__all__ and hasattr(actmix, name)
