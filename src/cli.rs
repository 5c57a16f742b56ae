//! The command line: clap definitions (doc comments are the `--help` text), logging set-up,
//! what each command prints, and the mapping of a result to an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::generate::FileFormat;
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time();
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
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
                let _ = print_outcome(&mut out, &outcome, listing);
            }
            if args.strict && outcome.ingest.rows_rejected() > 0 {
                eprintln!(
                    "incentives: {} row(s) rejected and --strict was given",
                    outcome.ingest.rows_rejected()
                );
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("incentives: {}", e.report());
            if let Error::UnreadableFile { .. } = e {
                eprintln!("incentives: (use --keep-going to skip files that cannot be read)");
            }
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

/// The summary for a person: the run date, (for `validate`) every reject, and the
/// reconciliation of every file.
pub(crate) fn print_outcome(w: &mut impl Write, o: &Outcome, list_rejects: bool) -> std::io::Result<()> {
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
    let width = ingest.files.iter().map(|f| f.path.len()).max().unwrap_or(4).max(5);
    writeln!(w, "  {:<width$} {:>10} {:>10} {:>10}", "file", "read", "accepted", "rejected")?;
    for f in &ingest.files {
        writeln!(w, "  {:<width$} {:>10} {:>10} {:>10}", f.path, f.rows, f.accepted, f.rejected)?;
    }
    writeln!(
        w,
        "  {:<width$} {:>10} {:>10} {:>10}",
        "total",
        ingest.rows_read(),
        ingest.rows_accepted(),
        ingest.rows_rejected()
    )?;
    for s in &ingest.skipped {
        writeln!(w, "  skipped {}: {} (no rows counted)", s.path, s.reason)?;
    }
    for i in &ingest.ignored {
        writeln!(w, "  ignored {}: {}", i.path, i.reason)?;
    }
    if !o.written.is_empty() {
        writeln!(
            w,
            "\nwrote {} file(s); manifest: {}",
            o.written.len(),
            o.written.last().expect("non-empty")
        )?;
    }
    Ok(())
}
