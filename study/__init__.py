"""Orchestration of ActMix studies: Ray Tune, Optuna, MLflow and the ``actmix-study`` CLI.

The package is a few rooms, each a subpackage whose ``__init__`` lists its public names
(``__all__``); a room's ``_private`` modules are imported only from inside the room.
The arrow goes down this list (a room imports only rooms above it; ``commands`` and
``cli`` may use any):

- ``study.system``: process plumbing (environment, signals, child processes, machine, console);
- ``study.store``: where a study's files live and whether a command may write there;
- ``study.space``: search spaces (YAML -> typed params -> Optuna suggestions -> ``RunConfig``);
- ``study.tracking``: every MLflow read and write (client, tags, Tune callback, leaderboard);
- ``study.request``: what a study is asked for (a dataclass the CLI derives its options from);
- ``study.run``: one study, from plan to summary (search, trainables, runner, resume);
- ``study.suite``: nested-CV suites (suite file, units and their records, runner, workers);
- ``study.report``: study and suite reports (JSON, HTML, Markdown, figures);
- ``study.commands``: the subcommands; ``study.cli``: the parser and ``main``;
- ``study.api``: the Python API a notebook imports (run a study, load its trials, read a
  suite's report).
"""
