//! [`RuleError`]: the one error type of the rules layer, and where in a file
//! each problem is.
//!
//! Every problem carries file, line and column so that `buzon rules check`
//! reads like a compiler: an admin fixes all of them in one pass.

use std::fmt;

use serde::Serialize;

/// Whether a problem stops the rule set from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The rule set is refused; the previous one stays active.
    Error,
    /// The rule set loads, but something is probably not what the admin meant.
    Warning,
}

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleError {
    pub severity: Severity,
    /// The file as the admin named it (directory joined with the file name).
    pub file: String,
    /// 1-based; 0 when the problem concerns the whole file or directory.
    pub line: usize,
    /// 1-based, in characters; 0 when `line` is 0.
    pub column: usize,
    pub message: String,
    /// What to write instead, when we can tell.
    pub hint: Option<String>,
}

impl RuleError {
    /// A problem about a whole file or directory (no position).
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> RuleError {
        RuleError {
            severity: Severity::Error,
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> RuleError {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            write!(f, "{}: {level}: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {level}: {}",
                self.file, self.line, self.column, self.message
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found while loading a rule set, in file and line order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleErrors(pub Vec<RuleError>);

impl RuleErrors {
    /// Sorted by file, then position, so output is stable and reads top-down.
    pub fn new(mut problems: Vec<RuleError>) -> RuleErrors {
        problems.sort_by(|a, b| {
            (&a.file, a.line, a.column, a.severity).cmp(&(&b.file, b.line, b.column, b.severity))
        });
        problems.dedup();
        RuleErrors(problems)
    }

    pub fn errors(&self) -> impl Iterator<Item = &RuleError> {
        self.0.iter().filter(|e| e.is_error())
    }

    pub fn error_count(&self) -> usize {
        self.errors().count()
    }
}

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

/// One rule file's text, for turning byte offsets into line and column.
#[derive(Debug, Clone)]
pub struct Source {
    /// Displayed name (directory joined with the file name).
    pub name: String,
    /// Just the file name, used in `set_by` (`rule:FILE/NAME`).
    pub file_name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(name: impl Into<String>, file_name: impl Into<String>, text: String) -> Source {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            name: name.into(),
            file_name: file_name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and character column of a byte offset (clamped to the
    /// text, so a bad offset never panics).
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (line.max(1), column + 1)
    }

    /// An error at a byte offset of this file.
    pub fn error(&self, offset: usize, message: impl Into<String>) -> RuleError {
        let (line, column) = self.position(offset);
        RuleError {
            severity: Severity::Error,
            file: self.name.clone(),
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(&self, offset: usize, message: impl Into<String>) -> RuleError {
        RuleError {
            severity: Severity::Warning,
            ..self.error(offset, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = Source::new("r/a.toml", "a.toml", "ab\nñé = 1\n".to_string());
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(3), (2, 1));
        // "ñé" is 4 bytes but 2 characters: the space after them is column 3.
        assert_eq!(src.position(7), (2, 3));
        assert_eq!(src.position(10_000), (3, 1));
    }

    #[test]
    fn displays_like_a_compiler() {
        let src = Source::new("rules/a.toml", "a.toml", "x\ny".to_string());
        let e = src
            .error(2, "unknown field `pipline`")
            .with_hint("did you mean `pipeline`?");
        assert_eq!(
            e.to_string(),
            "rules/a.toml:2:1: error: unknown field `pipline`\n  hint: did you mean `pipeline`?"
        );
        let w = RuleError::whole_file("rules", "no rule files");
        assert_eq!(w.to_string(), "rules: error: no rule files");
    }
}
