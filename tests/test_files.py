"""core/files.py's conventions held by every kind of writer: killed at the worst moment (just before its rename),
each leaves the old file whole and only a ``.tmp-`` leftover, which reopening the folder deletes.

The writer runs in a child process whose ``os.replace`` ends the process (exit status 9) instead of renaming.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from core import files
from core import run_dir as rd
from helpers import REPO, save, shape_image

DIES_AT_RENAME = "import os\nos.replace = lambda *args: os._exit(9)\n"


def killed(code, **paths):
    """Run ``code`` (with ``paths`` as str variables) in a child that dies at its first rename."""
    assigned = "".join(f"{name} = {str(path)!r}\n" for name, path in paths.items())
    proc = subprocess.run([sys.executable, "-c", DIES_AT_RENAME + assigned + textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]


def leftovers(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(files.TEMPORARY))


@pytest.mark.parametrize("kind", ["json", "labels", "figure"])
def test_a_killed_writer_in_a_run_folder_leaves_the_old_file_and_reopening_removes_its_leftover(tmp_path, kind):
    name, old = {"json": ("run.json", '{"old": 1}\n'), "labels": ("labels.txt", "0:old\n"),
                 "figure": ("curves.png", "old")}[kind]
    (tmp_path / name).write_text(old)
    code = {"json": "from core import files\nfiles.write_json(target, {'new': 2})",
            "labels": "from core import files\nfiles.write_labels(target, ['new'])",
            "figure": "from core import run_dir as rd\nplt = rd.pyplot()\nrd.save_figure(plt.figure(), target)"}[kind]
    killed(code, target=tmp_path / name)
    assert (tmp_path / name).read_text() == old
    assert len(leftovers(tmp_path)) == 1 and leftovers(tmp_path)[0].endswith(f"-{name}")
    rd.remove_leftovers(tmp_path)  # what train.py does under the folder's lock
    assert leftovers(tmp_path) == [] and (tmp_path / name).read_text() == old


def test_a_killed_conversion_leaves_no_run_and_the_next_one_removes_its_folder(tmp_path):
    out = tmp_path / "runs" / "converted"
    killed("""
        from core import run_dir as rd
        with rd.created(out) as tmp:
            open(tmp + '/run.json', 'w').write('{}')
    """, out=out)
    assert not out.exists() and len(leftovers(out.parent)) == 1  # .tmp-<pid>-converted, beside the run
    with rd.created(out) as tmp:  # the next conversion into the same folder
        assert leftovers(out.parent) == [os.path.basename(tmp)]  # the killed one's is gone already
        open(os.path.join(tmp, "run.json"), "w").write("{}")
    assert os.listdir(out) == ["run.json"] and leftovers(out.parent) == []


def test_a_killed_latest_link_keeps_the_old_one_and_the_next_replaces_its_leftover(tmp_path):
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        (runs / name).mkdir(parents=True)
    rd.mark_latest(runs / "a")
    killed("from core import run_dir as rd\nrd.mark_latest(folder)", folder=runs / "b")
    assert os.readlink(runs / "latest") == "a" and len(leftovers(runs)) == 1
    rd.mark_latest(runs / "b")
    assert os.readlink(runs / "latest") == "b" and leftovers(runs) == []


def test_a_killed_flowio_run_leaves_a_leftover_the_rerun_removes(tmp_path):
    for c, kind in enumerate(("circle", "square")):
        for i in range(3):
            save(tmp_path / "data" / kind / f"{i}.png", shape_image(kind, 10 * c + i), "PNG")
    out = tmp_path / "records"
    killed("from flowio.convert import convert\nconvert(data, out, val_fraction=0.34, shards=1, progress=False)",
           data=tmp_path / "data", out=out)
    assert leftovers(out)  # the marker's temporary file, at its rename
    from flowio.convert import convert
    convert(tmp_path / "data", out, val_fraction=0.34, shards=1, progress=False)
    assert leftovers(out) == []
    assert json.loads((out / "manifest.json").read_text())["classes"] == ["circle", "square"]
    assert files.read_labels(out / "labels.txt") == ["circle", "square"]


def test_labels_read_as_id_name_lines_in_any_order_or_as_plain_names(tmp_path):
    (tmp_path / "a.txt").write_text("1:dog\n0:cat: a tabby\n\n")
    (tmp_path / "b.txt").write_text("cat\ndog\n")
    assert files.read_labels(tmp_path / "a.txt") == ["cat: a tabby", "dog"]
    assert files.read_labels(tmp_path / "b.txt") == ["cat", "dog"]
    files.write_labels(tmp_path / "c.txt", ["cat", "dog"])
    assert (tmp_path / "c.txt").read_text() == "0:cat\n1:dog\n"
