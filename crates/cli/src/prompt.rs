//! Interactive questions for `stream add` and `consumer add`.
//!
//! The official `nats` CLI asks for every value not given by a flag when it
//! runs on a terminal. rnats asks the same questions, in the same order and
//! with the same defaults, as plain line prompts (type an answer, Enter for
//! the default, `?` for help) so they work on any terminal and are easy to
//! drive from a pseudo-terminal in tests. Off a terminal, or with
//! `--defaults`, every question silently takes its default: scripts never
//! block on a prompt.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{bail, Result};

/// Asks questions on a terminal, or answers them with their defaults.
pub struct Prompter {
    io: Option<(Box<dyn BufRead>, Box<dyn Write>)>,
}

impl Prompter {
    /// Interactive when stdin and stdout are terminals and `--defaults` is
    /// not set.
    pub fn new(accept_defaults: bool) -> Prompter {
        let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        if accept_defaults || !tty {
            return Prompter::defaults();
        }
        Prompter {
            io: Some((
                Box::new(std::io::BufReader::new(std::io::stdin())),
                Box::new(std::io::stdout()),
            )),
        }
    }

    /// A prompter that never asks: every question takes its default.
    pub fn defaults() -> Prompter {
        Prompter { io: None }
    }

    /// A prompter reading answers from `input` and writing questions to
    /// `output` (tests).
    #[cfg(test)]
    pub fn with_io(input: impl BufRead + 'static, output: impl Write + 'static) -> Prompter {
        Prompter {
            io: Some((Box::new(input), Box::new(output))),
        }
    }

    pub fn interactive(&self) -> bool {
        self.io.is_some()
    }

    /// Print `? question` plus `suffix`, read one answer line. `?` prints
    /// `help` and asks again.
    fn ask(&mut self, question: &str, suffix: &str, help: &str) -> Result<String> {
        let Some((input, output)) = self.io.as_mut() else {
            bail!("cannot prompt for user input without a terminal");
        };
        loop {
            write!(output, "? {question} {suffix}")?;
            output.flush()?;
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                writeln!(output)?;
                bail!("invalid input: no answer to {question:?}");
            }
            let answer = line.trim();
            if answer == "?" && !help.is_empty() {
                writeln!(output, "  {help}")?;
                continue;
            }
            return Ok(answer.to_string());
        }
    }

    fn invalid(&mut self, why: &str) -> Result<()> {
        if let Some((_, output)) = self.io.as_mut() {
            writeln!(output, "X Sorry, your reply was invalid: {why}")?;
        }
        Ok(())
    }

    /// Free text with a default (Enter takes it; may be empty).
    pub fn input(&mut self, question: &str, default: &str, help: &str) -> Result<String> {
        self.parsed(question, default, help, |s| Ok(s.to_string()))
    }

    /// Free text that must not be empty; off a terminal fails with `missing`.
    pub fn required(&mut self, question: &str, help: &str, missing: &str) -> Result<String> {
        if !self.interactive() {
            bail!("{missing}");
        }
        loop {
            let answer = self.ask(question, "", help)?;
            if !answer.is_empty() {
                return Ok(answer);
            }
            self.invalid("Value is required")?;
        }
    }

    /// Text turned into a value by `parse`; a bad answer is reported and
    /// asked again. Off a terminal the default is parsed.
    pub fn parsed<T>(
        &mut self,
        question: &str,
        default: &str,
        help: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T> {
        if !self.interactive() {
            return parse(default).map_err(|e| anyhow::anyhow!("invalid input: {e}"));
        }
        let suffix = if default.is_empty() {
            String::new()
        } else {
            format!("({default}) ")
        };
        loop {
            let answer = self.ask(question, &suffix, help)?;
            let answer = if answer.is_empty() { default } else { &answer };
            match parse(answer) {
                Ok(v) => return Ok(v),
                Err(e) => self.invalid(&e)?,
            }
        }
    }

    /// One of `options` (typed case-insensitively, spaces optional, or by
    /// its 1-based number); returns the option as listed.
    pub fn select(
        &mut self,
        question: &str,
        options: &[&str],
        default: &str,
        help: &str,
    ) -> Result<String> {
        let list = options.join("/");
        let question = format!("{question} [{list}]");
        self.parsed(&question, default, help, |answer| {
            pick(options, answer)
                .map(str::to_string)
                .ok_or_else(|| format!("choose one of {list}"))
        })
    }

    /// A yes/no question.
    pub fn confirm(&mut self, question: &str, default: bool) -> Result<bool> {
        if !self.interactive() {
            return Ok(default);
        }
        let suffix = if default { "(Y/n) " } else { "(y/N) " };
        loop {
            let answer = self.ask(question, suffix, "")?;
            match answer.to_ascii_lowercase().as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => self.invalid("answer yes or no")?,
            }
        }
    }
}

fn pick<'a>(options: &[&'a str], answer: &str) -> Option<&'a str> {
    let squash = |s: &str| s.replace(' ', "").to_ascii_lowercase();
    let want = squash(answer);
    if let Ok(n) = want.parse::<usize>() {
        return n.checked_sub(1).and_then(|i| options.get(i)).copied();
    }
    options.iter().copied().find(|o| squash(o) == want)
}

/// A duration written the way Go prints one (`2m0s`, `1h30m0s`, `45s`,
/// `1.5s`, `500ms`): the nats CLI shows its duplicate-window default so.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (unit, div) = match ns {
            n if n < 1_000 => ("ns", 1u128),
            n if n < 1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{}{unit}", trim_fraction(ns, div));
    }
    let secs = ns / 1_000_000_000;
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    let s = trim_fraction(ns % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// `n / div` with its fractional digits, trailing zeros removed.
fn trim_fraction(n: u128, div: u128) -> String {
    let (whole, frac) = (n / div, n % div);
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::{Arc, Mutex};

    /// Output sink the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("sink")).into_owned()
        }
    }

    fn prompter(answers: &str) -> (Prompter, Sink) {
        let sink = Sink::default();
        let p = Prompter::with_io(Cursor::new(answers.as_bytes().to_vec()), sink.clone());
        (p, sink)
    }

    #[test]
    fn enter_takes_the_default_and_bad_answers_are_asked_again() {
        let (mut p, out) = prompter("\nabc\n7\n");
        let parse = |s: &str| s.parse::<i64>().map_err(|e| e.to_string());
        assert_eq!(p.parsed("Replication", "1", "", parse).unwrap(), 1);
        assert_eq!(p.parsed("Replication", "1", "", parse).unwrap(), 7);
        let text = out.text();
        assert_eq!(text.matches("? Replication (1) ").count(), 3, "{text}");
        assert!(text.contains("X Sorry, your reply was invalid"), "{text}");
    }

    #[test]
    fn select_accepts_names_numbers_and_squashed_spaces() {
        let (mut p, _) = prompter("workqueue\n2\nbogus\nNEW\n");
        let opts = ["Limits", "Interest", "Work Queue"];
        assert_eq!(p.select("R", &opts, "Limits", "").unwrap(), "Work Queue");
        assert_eq!(p.select("R", &opts, "Limits", "").unwrap(), "Interest");
        assert_eq!(p.select("D", &["New", "Old"], "Old", "").unwrap(), "New");
    }

    #[test]
    fn help_is_shown_on_question_mark_and_end_of_input_is_an_error() {
        let (mut p, out) = prompter("?\n");
        let err = p.input("Message TTL", "-1", "oldest messages").unwrap_err();
        assert!(err.to_string().contains("no answer"), "{err}");
        assert!(out.text().contains("  oldest messages"), "{}", out.text());
    }

    #[test]
    fn required_and_confirm() {
        let (mut p, out) = prompter("\nORDERS\nmaybe\ny\n\n");
        assert_eq!(p.required("Stream Name", "", "missing").unwrap(), "ORDERS");
        assert!(out.text().contains("Value is required"));
        assert!(p.confirm("Allow message Roll-ups", false).unwrap());
        assert!(p.confirm("Allow message deletion", true).unwrap());
    }

    #[test]
    fn without_a_terminal_defaults_are_taken_and_required_values_fail() {
        let mut p = Prompter::defaults();
        assert_eq!(p.input("Start policy", "all", "").unwrap(), "all");
        assert!(!p.confirm("Allow message Roll-ups", false).unwrap());
        let err = p.required("Stream Name", "", "a stream name is required");
        assert_eq!(err.unwrap_err().to_string(), "a stream name is required");
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
        assert_eq!(go_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
    }
}
