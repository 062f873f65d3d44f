//! Opening what a run reads: event files (resumed at a checkpoint's positions, with a tracker
//! of how far each is read), the Fluvio topics, and the generator's reference data.

use super::error::{Error, doing};
use crate::config::Config;
use crate::engine;
use crate::engine::Sink;
use crate::event::{DeadLetter, Decoder, Event};
use crate::generator::{self, GenOptions};
use crate::refdata::{RefData, Subscribers};
use crate::source::{self, Tracker};
use crate::state::checkpoint::StreamPos;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Decoded events, or the lines refused, in order.
pub type Events = Box<dyn Iterator<Item = Result<Event, DeadLetter>>>;
/// What the engine reads.
pub type EngineInput = Box<dyn Iterator<Item = engine::Input>>;

/// Event files as one stream: a single file is decoded on a thread of its own (when there is a
/// core to spare: on one core the hand-off only costs); several are merged by event time.
pub fn open_events(files: &[PathBuf], decoder: Decoder) -> Result<Events, Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let open = |f: &PathBuf| std::fs::File::open(f).map_err(doing(|| format!("opening {}", f.display())));
    Ok(match files {
        [one] if cores > 1 => Box::new(source::ParallelDecode::new(open(one)?, &one.display().to_string(), decoder, 1)),
        [one] => Box::new(source::Lines::new(open(one)?, &one.display().to_string(), decoder)),
        _ => {
            let streams = files
                .iter()
                .map(|f| source::file(f, decoder.clone()).map_err(doing(|| format!("opening {}", f.display()))))
                .collect::<Result<Vec<_>, _>>()?;
            Box::new(source::Merge::new(streams))
        }
    })
}

/// [`open_events`] resumed at checkpointed positions (files not named there start at their
/// beginning), with a tracker of where each file has been read to.
pub fn open_events_at(
    files: &[PathBuf],
    decoder: Decoder,
    from: &[StreamPos],
) -> Result<(Events, Arc<Tracker>), Error> {
    use std::io::{Seek, SeekFrom};
    let starts: Vec<StreamPos> = files
        .iter()
        .map(|f| {
            let name = source::file_stream(f);
            from.iter().find(|p| p.stream == name).cloned().unwrap_or(StreamPos { stream: name, offset: 0, records: 0 })
        })
        .collect();
    // A stream the checkpoint read that this run does not (a file renamed, or its path written
    // differently) would be read again from its start into state that already holds it.
    let gone: Vec<String> = from
        .iter()
        .filter(|p| !starts.iter().any(|s| s.stream == p.stream))
        .map(|p| format!("{} (read to byte {})", p.stream, p.offset))
        .collect();
    if !gone.is_empty() {
        return Err(Error::Refused(format!(
            "the checkpoint was taken reading {}, which this run does not read: name the same files (the same paths), or move the checkpoint directory away to start over",
            gone.join(", ")
        )));
    }
    for s in starts.iter().filter(|s| !from.is_empty() && !from.iter().any(|p| p.stream == s.stream)) {
        eprintln!("tidings: {} is not in the checkpoint: read from its start", s.stream);
    }
    let tracker = Tracker::new(starts.clone());
    let open = |f: &PathBuf, at: &StreamPos| -> Result<std::fs::File, Error> {
        let mut file = std::fs::File::open(f).map_err(doing(|| format!("opening {}", f.display())))?;
        let len = file.metadata()?.len();
        if at.offset > len {
            return Err(Error::Refused(format!(
                "{}: the checkpoint says {} bytes of it were read, but it has {len}: was it replaced? (move the checkpoint directory away to start over)",
                f.display(),
                at.offset
            )));
        }
        file.seek(SeekFrom::Start(at.offset))?;
        Ok(file)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let input: Events = match (files, &starts[..]) {
        ([one], [at]) if cores > 1 => Box::new(source::ParallelDecode::resumed(
            open(one, at)?,
            &one.display().to_string(),
            decoder,
            1,
            at,
            Some(Arc::clone(&tracker)),
        )),
        ([one], [at]) => Box::new(
            source::Lines::new(open(one, at)?, &one.display().to_string(), decoder)
                .resumed(at)
                .tracked(Arc::clone(&tracker), 0),
        ),
        _ => {
            let streams = files
                .iter()
                .zip(&starts)
                .map(|(f, at)| {
                    Ok(source::Lines::new(open(f, at)?, &f.display().to_string(), decoder.clone()).resumed(at))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            Box::new(source::Merge::new(streams).tracked(Arc::clone(&tracker)))
        }
    };
    Ok((input, tracker))
}

/// The generator's reference data, as the generator source's events expect it.
pub fn generated_refdata(opts: &GenOptions) -> Result<(RefData, Subscribers), Error> {
    let files = generator::reference(opts);
    let dir = std::env::temp_dir().join(format!("tidings-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for (name, lines) in [
        ("subscribers.jsonl", &files.subscribers),
        ("cells.jsonl", &files.cells),
        ("calendar.jsonl", &files.calendar),
        ("stores.jsonl", &files.stores),
        ("countries.jsonl", &files.countries),
    ] {
        std::fs::write(dir.join(name), lines.join("\n"))?;
    }
    let r = RefData::load_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(r?)
}

/// The Fluvio source, its tracker, and why it stopped early if it did.
pub type FluvioInput = (EngineInput, Arc<Tracker>, Arc<std::sync::OnceLock<String>>);

/// The Fluvio source, each partition resumed at its checkpointed offset (else as configured),
/// with the tracker the checkpoints read its positions from and where it says why it stopped
/// early (raising `stop` when it does).
#[cfg(feature = "fluvio")]
pub fn fluvio_source(
    cfg: &Config,
    decoder: Decoder,
    from: &[StreamPos],
    stop: &Arc<AtomicBool>,
) -> Result<FluvioInput, Error> {
    let f = cfg
        .fluvio
        .as_ref()
        .ok_or_else(|| Error::Refused("source.kind = \"fluvio\" needs a [fluvio] section".into()))?;
    let owned = cfg.scale.owned_partitions();
    let (src, starts) = source::fluvio::FluvioSource::start(f, &owned, cfg.scale.partitions, decoder, from)
        .map_err(|e| Error::Refused(e.to_string()))?;
    let src = src.stopping(Arc::clone(stop));
    let failure = src.failure();
    eprintln!("fluvio        reading {:?} partitions {owned:?} from {}", f.topics, f.endpoint);
    let at = |s: &crate::source::scale::PartitionStart| {
        s.offset.map_or_else(
            || format!("{}/{} at its {}", s.topic, s.partition, f.start),
            |o| format!("{}/{} at {o}", s.topic, s.partition),
        )
    };
    let (resumed, configured): (Vec<_>, Vec<_>) = starts.iter().partition(|s| s.from_checkpoint);
    if !resumed.is_empty() {
        eprintln!(
            "fluvio        resuming from the checkpoint (its offsets win over [[fluvio.offsets]] and fluvio.start): {}",
            resumed.iter().map(|s| at(s)).collect::<Vec<_>>().join(", ")
        );
    }
    if !configured.is_empty() && !from.is_empty() {
        eprintln!(
            "fluvio        not in the checkpoint, started as configured: {}",
            configured.iter().map(|s| at(s)).collect::<Vec<_>>().join(", ")
        );
    }
    let tracker = src.tracker();
    Ok((Box::new(src), tracker, failure))
}

#[cfg(not(feature = "fluvio"))]
pub fn fluvio_source(_: &Config, _: Decoder, _: &[StreamPos], _: &Arc<AtomicBool>) -> Result<FluvioInput, Error> {
    Err(Error::Refused(NO_FLUVIO.into()))
}

#[cfg(feature = "fluvio")]
pub fn fluvio_sink(
    f: &crate::source::scale::FluvioSection,
    offset: chrono::FixedOffset,
) -> Result<Box<dyn Sink>, Error> {
    Ok(Box::new(crate::sink::fluvio::FluvioSink::start(f, offset).map_err(|e| Error::Refused(e.to_string()))?))
}

#[cfg(not(feature = "fluvio"))]
pub fn fluvio_sink(_: &crate::source::scale::FluvioSection, _: chrono::FixedOffset) -> Result<Box<dyn Sink>, Error> {
    Err(Error::Refused(NO_FLUVIO.into()))
}

/// What a build without the `fluvio` feature says when a config asks for Fluvio.
#[cfg(not(feature = "fluvio"))]
pub const NO_FLUVIO: &str = "this build has no Fluvio transport: build with `cargo build --release --features fluvio`";
