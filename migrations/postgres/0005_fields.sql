-- The team's own fields set by the rules (PVI's asociación, medio de ingreso,
-- the help desk's nivel), as a JSON object of strings.
ALTER TABLE tickets ADD COLUMN fields TEXT NOT NULL DEFAULT '{}';
