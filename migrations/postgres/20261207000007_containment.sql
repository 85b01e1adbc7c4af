-- Containment (issue 17).
--
-- An alert keeps the project its budget had when it fired, so moving a budget to another
-- project does not show its old alerts to the new project's readers. Alerts fired before
-- this column existed take their budget's project now.
ALTER TABLE alerts ADD COLUMN project text;
UPDATE alerts a SET project = b.spec->>'project' FROM budgets b WHERE b.id = a.budget_id;
