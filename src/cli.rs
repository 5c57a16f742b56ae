//! The command line: clap definitions (doc comments are the `--help` text), logging set-up,
//! what each command prints, and the mapping of a result to an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::generate::FileFormat;
use crate::rules::payouts::Totals;
use crate::run::{self, Options, Outcome};

/// The nightly job of a channel-partner incentives program: ingests the day's feeds, decides
/// eligibility, computes earnings and payouts, and writes reports for finance and BI.
///
/// Exit codes: 0 ok; 1 finished with rejected rows under --strict; 2 error (unreadable file,
/// I/O, another run of the date in progress); 78 invalid configuration (program files,
/// arguments, an unusable location).
#[derive(Debug, Parser)]
#[command(name = "incentives", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    /// More detail on stderr (-v: stages, -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Only errors on stderr, and no summary on stdout.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// Format of the log on stderr: text for people, json for schedulers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "INCENTIVES_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check the program files and every feed row for a run date; list each rejected row with
    /// its feed, file, row, field, value and reason, and the reconciliation of every file.
    /// Writes nothing.
    Validate(CommonArgs),
    /// Run the daily job for a run date: validate the feeds, then write the reports and the
    /// run manifest (last) under --output.
    Run(CommonArgs),
    /// Write a synthetic landing zone (OUTPUT/landing) and matching programs (OUTPUT/pipelines)
    /// for scale tests and benchmarks: all seven feeds, skewed partners, refunds, late lines.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Number of partners (all three types).
    #[arg(long, default_value_t = 1000)]
    pub(crate) partners: usize,
    /// Number of sales (refunds of some of them come on top).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) transactions: u64,
    /// Months of daily deliveries, from --start.
    #[arg(long, default_value_t = 12)]
    pub(crate) months: u32,
    /// Seed: the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    #[arg(long, value_enum, default_value_t = FileFormat::Parquet)]
    pub(crate) format: FileFormat,
    /// Share of transaction rows made bad on purpose, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) bad_rows: f64,
    /// First day of the data.
    #[arg(long, value_parser = parse_run_date, default_value = "2026-07-01")]
    pub(crate) start: NaiveDate,
    /// Where to write (a folder or object-store URL).
    #[arg(long, value_name = "URI")]
    pub(crate) output: String,
}

#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// The landing zone: a folder (or file:// URL) holding one folder per feed.
    #[arg(long, value_name = "URI", default_value = "sample_data/landing", env = "INCENTIVES_INPUT")]
    pub(crate) input: String,

    /// The folder of program files (*.toml).
    #[arg(long, value_name = "DIR", default_value = "pipelines", env = "INCENTIVES_PROGRAMS")]
    pub(crate) programs: String,

    /// The run date, YYYY-MM-DD [default: the newest delivery date in the landing zone].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_run_date, env = "INCENTIVES_DATE")]
    pub(crate) date: Option<NaiveDate>,

    /// Where reports go: a folder (or file:// URL).
    #[arg(long, value_name = "URI", default_value = "out", env = "INCENTIVES_OUTPUT")]
    pub(crate) output: String,

    /// Skip a file that cannot be read (listed with its reason) instead of failing the run.
    #[arg(long)]
    pub(crate) keep_going: bool,

    /// Exit 1 when any row was rejected (the reports are still written).
    #[arg(long)]
    pub(crate) strict: bool,

    /// Transactions per partner range: the rules and reports go range by range, so this bounds
    /// the earning lines held at once (smaller: less memory; larger: fewer, longer pieces).
    #[arg(long, value_name = "N", default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..),
          env = "INCENTIVES_RANGE_LINES")]
    pub(crate) range_lines: u64,

    /// Keep the accepted transactions in a local file instead of in memory when the run's
    /// transaction files hold more rows than this (about 55 bytes of memory per row saved,
    /// 160 bytes of local disk used).
    #[arg(long, value_name = "ROWS", default_value_t = 50_000_000, env = "INCENTIVES_SPILL_ABOVE")]
    pub(crate) spill_above: u64,

    /// Folder for the spill files (unlinked as soon as made).
    #[arg(long, value_name = "DIR", env = "INCENTIVES_SPILL_DIR")]
    pub(crate) spill_dir: Option<std::path::PathBuf>,

    /// `run`: publish even when the landing zone has no transaction file for the date (else
    /// the run stops with exit 2: a missing mount would publish empty reports).
    #[arg(long)]
    pub(crate) allow_empty: bool,

    /// `run`: publish even when far fewer transactions are accepted than in the latest
    /// published run of the output location (see --shrink-limit).
    #[arg(long)]
    pub(crate) allow_shrink: bool,

    /// `run`: ignore the ledgers published at the output location and book the date as a first
    /// run (the manifest says so). A date before the latest published run is still refused.
    #[arg(long)]
    pub(crate) rebuild: bool,

    /// `run`: stop (exit 2) when the accepted transactions are fewer than this percentage of
    /// the latest published run's, on or before the run date, at the output location.
    #[arg(long, value_name = "PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100),
          env = "INCENTIVES_SHRINK_LIMIT")]
    pub(crate) shrink_limit: u8,
}

fn parse_run_date(s: &str) -> Result<NaiveDate, String> {
    crate::model::dates::parse_date(s).ok_or_else(|| format!("invalid run date '{s}': expected YYYY-MM-DD"))
}

impl CommonArgs {
    fn options(&self, quiet: bool) -> Options {
        Options {
            progress: !quiet,
            input: self.input.clone(),
            programs: self.programs.clone(),
            date: self.date,
            output: self.output.clone(),
            keep_going: self.keep_going,
            range_lines: usize::try_from(self.range_lines).unwrap_or(usize::MAX),
            spill: crate::feeds::validate::SpillPolicy {
                above_rows: self.spill_above,
                dir: self.spill_dir.clone().unwrap_or_else(std::env::temp_dir),
            },
            rebuild: self.rebuild,
            guard: crate::run::Guard {
                allow_empty: self.allow_empty,
                allow_shrink: self.allow_shrink,
                shrink_limit: self.shrink_limit,
            },
        }
    }
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("INCENTIVES_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("incentives={level}")));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match cli.log_format {
        // For schedulers and log stores: one object a line, with an RFC 3339 UTC timestamp and
        // the level; numbers are JSON numbers.
        LogFormat::Json => builder.json().try_init(),
        // For people: the terminal shows its own time.
        LogFormat::Text => builder.without_time().with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

/// Reports a failure on stderr: `incentives: ...` for people, or, with `--log-format json`, an
/// `ERROR` line of the JSON log (with the exit code), so that a log store sees every line.
fn report_failure(cli: &Cli, message: &str, code: u8) {
    match cli.log_format {
        LogFormat::Json => tracing::error!(exit_code = code, "{message}"),
        LogFormat::Text => eprintln!("incentives: {message}"),
    }
}

/// Parses the command line, runs the command and returns the exit code. Errors are printed
/// here, once.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are answers, not errors; a usage error is invalid configuration.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(78) } else { ExitCode::SUCCESS };
        }
    };
    init_logging(&cli);
    let (args, result) = match &cli.command {
        Command::Validate(a) => (a, run::validate(&a.options(cli.quiet))),
        Command::Run(a) => (a, run::run(&a.options(cli.quiet))),
        Command::Generate(g) => return generate(g, cli.quiet),
    };
    match result {
        Ok(outcome) => {
            if !cli.quiet {
                let mut out = std::io::stdout().lock();
                let listing = matches!(cli.command, Command::Validate(_));
                // A closed stdout (e.g. piped into `head`) must not turn a good run into a panic.
                let _ = print_outcome(&mut out, &outcome, listing, cli.verbose > 0);
            }
            if args.strict && outcome.ingest.rows_rejected() > 0 {
                let rejected = outcome.ingest.rows_rejected();
                report_failure(&cli, &format!("{rejected} row(s) rejected and --strict was given"), 1);
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            let mut message = e.report();
            if let Error::UnreadableFile { .. } = e {
                message.push_str(" (use --keep-going to skip files that cannot be read)");
            }
            report_failure(&cli, &message, e.exit_code_number());
            e.exit_code()
        }
    }
}

fn generate(g: &GenerateArgs, quiet: bool) -> ExitCode {
    if !(0.0..=1.0).contains(&g.bad_rows) {
        eprintln!("incentives: --bad-rows must be between 0 and 1, not {}", g.bad_rows);
        return ExitCode::from(78);
    }
    let opts = crate::generate::Options {
        partners: g.partners,
        transactions: g.transactions,
        months: g.months,
        seed: g.seed,
        format: g.format,
        output: g.output.clone(),
        bad_rows: g.bad_rows,
        start: g.start,
        progress: !quiet && std::io::stderr().is_terminal(),
    };
    let started = std::time::Instant::now();
    match crate::generate::generate(&opts) {
        Ok(s) => {
            if !quiet {
                println!(
                    "wrote {} files ({} transaction rows, {:.1} MB) to {} in {:.1}s",
                    s.files,
                    s.transactions,
                    s.bytes as f64 / 1e6,
                    g.output,
                    started.elapsed().as_secs_f64()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("incentives: {}", e.report());
            e.exit_code()
        }
    }
}

/// The summary for a person, made to fit a screen: the run date, (for `validate`) every
/// reject, the reconciliation per feed (per file when `per_file`, `-v`), and each program's
/// money by status.
pub(crate) fn print_outcome(
    w: &mut impl Write,
    o: &Outcome,
    list_rejects: bool,
    per_file: bool,
) -> std::io::Result<()> {
    let defaulted = if o.date_was_defaulted { " (the newest delivery date)" } else { "" };
    writeln!(w, "run date {}{defaulted}", o.run_date)?;
    writeln!(w, "programs: {}", o.programs.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", "))?;
    let ingest = &o.ingest;
    if list_rejects {
        writeln!(w, "\nrejected rows ({} problems):", ingest.rejects.len())?;
        for r in &ingest.rejects {
            writeln!(
                w,
                "  {:<16} {} row {}: {} {:?} {}",
                r.feed.name(),
                r.file,
                r.row,
                if r.field.is_empty() { "(record)" } else { &r.field },
                r.value,
                r.code
            )?;
        }
    }
    writeln!(w, "\nreconciliation (rows read = accepted + rejected):")?;
    // One line per feed, or per file: the label, the files it covers, and the three counts.
    let mut lines: Vec<(String, usize, u64, u64, u64)> = Vec::new();
    for f in &ingest.files {
        let label =
            if per_file { f.path.clone() } else { f.path.split('/').next().unwrap_or_default().to_string() };
        match lines.last_mut() {
            Some(l) if l.0 == label => {
                l.1 += 1;
                l.2 += f.rows;
                l.3 += f.accepted;
                l.4 += f.rejected;
            }
            _ => lines.push((label, 1, f.rows, f.accepted, f.rejected)),
        }
    }
    let first = if per_file { "file" } else { "feed" };
    let width = lines.iter().map(|l| l.0.len()).max().unwrap_or(4).max(5);
    writeln!(w, "  {first:<width$} {:>6} {:>10} {:>10} {:>10}", "files", "read", "accepted", "rejected")?;
    for (label, files, rows, accepted, rejected) in &lines {
        writeln!(w, "  {label:<width$} {files:>6} {rows:>10} {accepted:>10} {rejected:>10}")?;
    }
    writeln!(
        w,
        "  {:<width$} {:>6} {:>10} {:>10} {:>10}",
        "total",
        ingest.files.len(),
        ingest.rows_read(),
        ingest.rows_accepted(),
        ingest.rows_rejected()
    )?;
    if ingest.rows_rejected() > 0 {
        writeln!(
            w,
            "  {} rejected row(s) with {} problem(s): the rejects report has one row per problem \
             (a row can fail several checks){}",
            ingest.rows_rejected(),
            ingest.rejects.len(),
            if list_rejects { "" } else { "; `incentives validate` lists them" }
        )?;
    }
    if !per_file && lines.len() < ingest.files.len() {
        writeln!(w, "  (per file: -v)")?;
    }
    for s in &ingest.skipped {
        writeln!(w, "  skipped {}: {} (no rows counted)", s.path, s.reason)?;
    }
    for i in &ingest.ignored {
        writeln!(w, "  ignored {}: {}", i.path, i.reason)?;
    }
    if !o.written.is_empty() {
        print_money(w, o)?;
        writeln!(
            w,
            "\nwrote {} file(s); manifest: {}",
            o.written.len(),
            o.written.last().expect("non-empty")
        )?;
    }
    Ok(())
}

/// Each program's money as of the run date, in USD, by status (the dashboard's columns summed
/// over the program's partners).
fn print_money(w: &mut impl Write, o: &Outcome) -> std::io::Result<()> {
    let zero = Totals::default();
    let heads = ["earned", "scheduled", "on hold", "carried fwd", "accruing", "co-op avail."];
    let rows: Vec<(&str, [String; 6])> = o
        .programs
        .iter()
        .map(|p| {
            let t = o.money.get(&p.id).unwrap_or(&zero);
            let cells = [t.earned, t.scheduled, t.on_hold, t.carried_forward, t.accruing, t.coop_available]
                .map(|v| v.to_string());
            (p.id.as_str(), cells)
        })
        .collect();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(7).max(7);
    let cell =
        rows.iter().flat_map(|r| r.1.iter().map(String::len)).chain(heads.map(str::len)).max().unwrap_or(8);
    writeln!(w, "\nmoney (USD, as of the run date; scheduled = the payable list):")?;
    write!(w, "  {:<width$}", "program")?;
    for h in heads {
        write!(w, " {h:>cell$}")?;
    }
    writeln!(w)?;
    for (id, cells) in &rows {
        write!(w, "  {id:<width$}")?;
        for c in cells {
            write!(w, " {c:>cell$}")?;
        }
        writeln!(w)?;
    }
    Ok(())
}
