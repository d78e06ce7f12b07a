//! Rendering library progress events: a progress bar on a terminal,
//! nothing when stderr is piped, or (`--progress json`) one JSON object
//! per event and line, for apps and dashboards that drive the CLI.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a command shows its progress on stderr.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub(crate) enum Mode {
    /// A progress bar (drawn only on a terminal).
    Bar,
    /// One JSON object per event and line (docs/JSON.md).
    Json,
    /// Nothing.
    None,
}

/// Writes one event as a JSON line on stderr (an event that cannot be
/// serialized is skipped: progress never fails a command).
pub(crate) fn json_line(e: &impl serde::Serialize) {
    if let Ok(line) = serde_json::to_string(e) {
        eprintln!("{line}");
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub(crate) struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub(crate) fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar { bar }
    }

    pub(crate) fn diff_event(&self, e: deltapack_diff::Event) {
        use deltapack_diff::Event;
        match e {
            Event::Scanning => self.bar.set_message("scanning"),
            Event::Planned { bytes, .. } => {
                self.bar.set_length(bytes);
                self.bar.set_message("diffing");
            }
            Event::Encoded { bytes } => self.bar.inc(bytes),
            Event::Writing => self.bar.set_message("compressing"),
            _ => {}
        }
    }

    pub(crate) fn apply_event(&self, e: deltapack_apply::Event) {
        use deltapack_apply::Event;
        match e {
            Event::Header { bytes } => self.bar.set_length(bytes),
            Event::VerifyingBase => self.bar.set_message("checking base"),
            Event::Progress { done } => {
                self.bar.set_message("rebuilding");
                self.bar.set_position(done);
            }
            Event::Finishing => self.bar.set_message("finishing"),
            _ => {}
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
