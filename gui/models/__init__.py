"""The window's model layer: objects that own state and work, with no widgets.

- :class:`gui.state.ExperimentState` — the experiment config being edited and the loaded data;
- :class:`gui.models.data_session.DataSession` — loading and preparing the data;
- :class:`gui.models.training_session.TrainingSession` — the training process and the current run;
- :class:`gui.models.runs_table.RunsTableModel` — the run history as a Qt table model.

Views take these in their constructor, render them and write user edits back.
"""
