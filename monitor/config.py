"""One settings object, built once at start from a file, the environment and the command line.

Precedence: command line > environment (``POISON_MONITOR_...``, nested with
``__``, e.g. ``POISON_MONITOR_KAFKA__BOOTSTRAP_SERVERS``) > the file given by
``--config`` (TOML or YAML) > defaults. Unknown or invalid options fail at
start, naming the option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "POISON_MONITOR_"

#: the file named by --config (set by the command line before settings are built)
CONFIG_FILE: Path | None = None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    """Where readings come from and where alerts and dead letters go."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    topic: str = Field("sensor-readings", description="topic the readings arrive on")
    alerts_topic: str = Field("poison-alerts", description="topic the alerts are produced to")
    dead_letter_topic: str = Field("sensor-readings-dlq", description="topic for messages that cannot be used")
    group_id: str = Field("poison-monitor", description="consumer group id")
    client_id: str = Field("poison-monitor", description="client id sent to the brokers")
    auto_offset_reset: Literal["earliest", "latest"] = Field("earliest", description="where a new consumer group starts")
    max_poll_records: int = Field(5000, ge=1, description="most messages in one micro-batch")
    poll_timeout_ms: int = Field(500, ge=1, description="how long one poll waits for messages")
    connect_retry_seconds: float = Field(2.0, gt=0, description="pause between attempts to reach the brokers")
    connect_timeout_seconds: float = Field(120.0, gt=0, description="give up reaching the brokers after this long")


class DetectionSettings(_Section):
    """Windows, consensus, detectors, collusion and learner parameters."""

    window_seconds: float | None = Field(None, gt=0, description="event-time window length; inferred from the data if unset")
    lateness_seconds: float | None = Field(None, ge=0, description="accept readings this late after a window's end (default: one window)")
    max_message_bytes: int = Field(512 * 1024, ge=64, description="larger messages are dead-lettered")
    min_devices: int = Field(3, ge=1, description="fewer trusted readings make a window's consensus uncertain")
    dispersion_max: float = Field(4.0, gt=1, description="a window whose trusted devices spread more than this times the group's usual spread is uncertain")
    consensus_cutoff: float = Field(3.0, gt=0, description="readings this many robust sigmas from the median leave the consensus")
    relative_scale: bool = Field(False, description="learn residuals in units of the group's current spread (for data whose noise grows and shrinks group-wide)")
    spread_alpha: float = Field(0.02, gt=0, le=1, description="smoothing of a group's spread when relative_scale is on")
    warmup: int = Field(60, ge=2, description="windows a device is learned before it is scored")
    relearn_share: float = Field(0.75, gt=0.5, le=1.0, description="a group whose present devices have been out of "
                                 "the consensus (in alarm, quarantined or in a set) at more than this share for "
                                 "relearn_windows windows in a row learns them afresh (1: never)")
    relearn_windows: int = Field(120, ge=1, description="see relearn_share")
    offset_pin: float = Field(0.1, ge=0, description="rate, in multiples of alpha, at which each group's offsets are moved together towards their established devices' median, less those first seen in a burst of new ids (pins their common level, which nothing else holds; 0: off)")
    offset_restore_windows: int = Field(128, ge=0, description="when a colluding set is nominated, its group's offsets are moved back together by the median shift its other devices' offsets learned since a snapshot from before the set's onset (the set's pull, which no residual shows once it is out); snapshots of every offset are taken this many windows apart, two kept (0: off)")
    alpha: float | None = Field(None, gt=0, lt=1, description="learning rate per window of a device's offset and scale (default: window_seconds / learn_seconds)")
    learn_seconds: float = Field(30_000.0, gt=0, description="memory of a device's learned offset and scale, in time (0.002 per window at one-minute windows): honest sensors drift per unit of time, not per sample")
    cusum_k: float = Field(0.5, ge=0, description="CUSUM reference value (sigmas)")
    cusum_h: float = Field(11.8, gt=0, description="CUSUM alarm threshold")
    cusum_h_off: float = Field(1.0, ge=0, description="CUSUM level under which an alarm resolves")
    slow_k: float = Field(0.2, ge=0, description="slow CUSUM reference value (sigmas): ramps and small steps")
    slow_h: float = Field(22.0, gt=0, description="slow CUSUM alarm threshold")
    baseline_slack: float = Field(2.0, ge=0, description="while a device's learned offset is young, mean-shift "
                                  "CUSUMs add this many times its extra standard error (over a steady one's) to "
                                  "their reference value")
    clip: float = Field(4.0, gt=0, description="residuals are clipped here (sigmas) before CUSUMs")
    noise_ratio: float = Field(2.0, gt=1, description="noise CUSUM: sigma growth it is tuned for")
    noise_h: float = Field(18.0, gt=0, description="noise CUSUM alarm threshold")
    spike_z: float = Field(8.0, gt=0, description="a residual beyond this many sigmas is a spike")
    spike_quiet: int = Field(10, ge=1, description="windows without a spike before a spike alarm resolves")
    spike_pair_z: float = Field(4.5, gt=0, description="smaller spikes (this many sigmas, coming straight back) alarm in pairs")
    spike_pair_windows: int = Field(120, ge=1, description="... when two of them come at most this many windows apart")
    stuck_min_run: int = Field(10, ge=2, description="windows with an unchanged value before stuck")
    stuck_min_move: float = Field(3.0, ge=0, description="consensus move (device sigmas) that proves a device stuck")
    replay_k: int = Field(2, ge=2, description="length of the value sequences fingerprinted for replay")
    replay_capacity: int = Field(128, ge=1, description="fingerprints remembered per device")
    replay_min_matches: int = Field(3, ge=1, description="consecutive repeated sequences before replay")
    collusion_threshold: float = Field(14.0, gt=0, description="subset-scan evidence (log scale, after paying for the choice of set) that nominates a colluding set")
    collusion_penalty: Literal["calibrated", "union"] = Field("calibrated", description="what choosing a set costs the scan: the log of the effective number of sets of its size, measured on honest noise (calibrated), or of all of them (union, the stricter union bound)")
    collusion_memory: int = Field(32, ge=4, description="middle memory (windows) of the residual means scanned for sets (also a quarter and four times it)")
    collusion_winsor: float = Field(1.5, gt=0, description="a member counts at most this many standard errors above the set's weakest")
    collusion_value_units: bool = Field(True, description="seek colluding sets as one shift in value units (each device's residual mean weighted by its own noise level), not in each device's own standard errors")
    collusion_extend_z: float = Field(2.5, gt=0, description="a device standing out by this many of its own standard errors, in the direction of a set just found, is named with it")
    collusion_hold_pulled: bool = Field(True, description="hold a bias/drift alarm raised against the direction of a set its group holds (not yet confirmed) until 60 windows after the hold, and alert it only if it lasts: the set's members still in the consensus pull it")
    collusion_min_members: int = Field(2, ge=2, description="smallest colluding set")
    collusion_max_fraction: float = Field(0.5, gt=0, le=1, description="largest colluding set, as a fraction of the group")
    collusion_join_z: float = Field(5.0, gt=0, description="evidence (z of the mean residual since the set was alerted) that joins a device to it")
    collusion_confirm_seconds: float = Field(5400.0, gt=0, description="time a nominated set is held (out of the consensus, not yet alerted) while its members' shifts are measured (at least 10 windows)")
    collusion_tolerance: float = Field(0.05, ge=0, description="how far (in their own sigmas) honest members of one set may differ in shift")
    collusion_homogeneity: float = Field(2.5, gt=0, description="largest chi-square per degree of freedom of the members' shifts for a set to be alerted")
    collusion_outsiders: int = Field(2, ge=0, description="a nominated set is dropped when this many devices outside it shifted its way over the hold by other amounts than its members (an event of many sizes, such as sun on a wall, not one shift); 0: never")
    collusion_recur_seconds: float = Field(86_400.0, ge=0, description="a set that faded during its hold and is nominated again within this time (same direction, sharing at least collusion_min_members devices and half the smaller set with it and the faded sets whose hold it had resumed) goes on with the hold it had: an intermittent set, or a poisoner's next episode, is confirmed over its active spells (0: never)")
    collusion_recur_measure: bool = Field(True, description="a set that faded during its hold goes on being measured while it is remembered (collusion_recur_seconds), so that when it is nominated again its hold goes on with its members' shifts over the pauses as well: a set lying in spells shorter than the hold is measured over spells and pauses alike")
    collusion_mimic: float = Field(0.0, ge=0, description="threshold of each device's CUSUM for residual steps far smaller than its group's in the same window (monitor.mimic; 0: off): an alerted set takes a device of its group in that alarm since about the set's onset as its camouflage member, the one that reports the consensus the set pulls")
    collusion_drift_seconds: float = Field(172800.0, ge=0, description="memory of each device's learned offset's drift (its mean step while it learns): where the device's own alarm stops its offset learning, the collusion scan carries the device on by that drift, so an honest sensor drifting steadily does not read ever further off in alarm and make a set with the next drifters of its group (0: off; see the README on false collusion alerts)")
    collusion_drift_max: float = Field(1.0, ge=0, description="fastest drift (own sigmas a day) the collusion scan carries a frozen offset on by")
    collusion_drift_z: float = Field(2.0, ge=0, description="a learned drift is carried on only where it stands this many standard errors (of its average of the offset's steps) from zero: an offset that wanders, as real stations' do with the seasons, is not extrapolated")
    collusion_gap: float = Field(2.0, ge=0, description="a held set is alerted only if its members' common shift over the hold stands this many robust standard deviations of the rest of the group's shifts beyond their median: a group's fastest honest drifters, its tail, shift by little more than the rest spread (0: off; see the README on false collusion alerts)")
    collusion_recheck: int = Field(4, ge=0, description="an alerted set resolves when the shifts of the members it was alerted with, measured again over blocks as long as the hold, disagree (the hold's homogeneity test) this many blocks in a row: honest devices alerted by mistake drift apart against the offsets they had when nominated (0: never; see the README on false collusion alerts)")
    collusion_camp: float = Field(0.45, ge=0, le=1, description="a held set is not alerted when it and the devices standing with it (shifted its way by collusion_extend_z standard errors and half its shift) make up this share of the group's devices, unless the consensus' history called it the camp that moved: it is one of two camps, or the majority, and nothing says it is the one that lies (0: off)")
    collusion_cooldown: int = Field(60, ge=0, description="windows a group is not re-examined after a set was dropped as heterogeneous")
    reputation_forget: float = Field(0.995, gt=0, le=1, description="forgetting factor of the beta reputation per window")
    reputation_good_z: float = Field(2.0, gt=0, description="a window with |z| under this is good evidence for a device")
    quarantine_below: float = Field(0.3, gt=0, lt=1, description="trust under which a device is quarantined (out of the consensus)")
    readmit_above: float = Field(0.8, gt=0, lt=1, description="trust over which a quarantined device is re-admitted")
    restart_hold: int = Field(30, ge=0, description="windows after a device restart (its sequence numbers started again) in which a shift is reported as part of the restart")
    sybil_min_new: int = Field(3, ge=1, description="new device ids in a burst that raise an input/sybil alert")
    sybil_fraction: float = Field(0.2, gt=0, description="... and at least this fraction of the group's established devices")
    sybil_window: int = Field(10, ge=1, description="windows within which new ids count as one burst")
    learner_lr: float = Field(0.05, gt=0, description="SGD learning rate of the River forecasters")
    learner_warmup: int = Field(30, ge=2, description="windows before the learners are compared")
    learner_threshold: float = Field(1.0, gt=0, description="guarded/shadow divergence (group spreads) that alerts")
    learner_fallback: bool = Field(True, description="in a window whose consensus is uncertain (not split), the guarded model learns the robust consensus of every present device but colluding-set members")
    learner_every: int = Field(1, ge=1, description="the learners see one window in this many (a cost knob for very large fleets)")
    learner_version_every: int = Field(1440, ge=2, description="windows between checks of the guarded model against its previous version")
    learner_regression: float = Field(1.0, gt=0, description="error increase on the trusted reference (group spreads) that rolls a version back and alerts")

    @model_validator(mode="after")
    def _hysteresis(self) -> DetectionSettings:
        if self.cusum_h_off >= self.cusum_h:
            raise ValueError("cusum_h_off must be below cusum_h")
        return self


class MetricsSettings(_Section):
    """The Prometheus endpoint."""

    host: str = Field("127.0.0.1", description="address /metrics listens on")
    port: int = Field(9108, ge=0, le=65535, description="port of /metrics (0: pick a free one)")
    enabled: bool = Field(True, description="serve /metrics, /healthz and /readyz")
    top_k: int = Field(10, ge=0, le=1000, description="the most suspicious devices exported with device labels (0: none)")
    ready_max_lag: int = Field(10_000, ge=0, description="/readyz fails while more messages than this are waiting")
    group_labels: bool = Field(False, description="also export per-group series with a group label (consensus, trust states, colluding sets, alerts)")
    max_groups: int = Field(100, ge=1, le=10_000, description="most groups with their own group label, the first seen (kept for the process's life); later groups are summed under group=_other")


class StateSettings(_Section):
    """Checkpoints of the detection state (`run` and `replay`; see docs/checkpoint.md)."""

    path: Path | None = Field(None, description="checkpoint file (gzip JSON): restored at start if it exists, written every every_seconds and at shutdown (default: none, detection warms up again after a restart)")
    every_seconds: float = Field(30.0, gt=0, description="seconds between checkpoints while readings arrive")
    discard: bool = Field(False, description="start fresh: move an existing checkpoint aside to <path>.discarded instead of restoring it (for one start)")


class Settings(BaseSettings):
    """Settings shared by every command."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True,
        cli_kebab_case=True, cli_implicit_flags=True, nested_model_default_partial_update=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    detection: DetectionSettings = DetectionSettings()
    metrics: MetricsSettings = MetricsSettings()
    state: StateSettings = StateSettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    config: Path | None = Field(None, description="settings file (TOML or YAML); the environment and flags override it")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if CONFIG_FILE is not None:
            sources.append(_file_source(settings_cls, CONFIG_FILE))
        return tuple(sources)


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    from pydantic_settings import TomlConfigSettingsSource, YamlConfigSettingsSource

    if path.suffix.lower() in (".yaml", ".yml"):
        return YamlConfigSettingsSource(settings_cls, yaml_file=path)
    return TomlConfigSettingsSource(settings_cls, toml_file=path)


def describe(model: type[BaseModel], prefix: str = "") -> list[dict[str, Any]]:
    """Every option: dotted name, default and description (for docs and `config`)."""
    rows = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows += describe(ann, f"{prefix}{name}.")
        else:
            rows.append({"option": f"{prefix}{name}", "default": field.default, "description": field.description or ""})
    return rows
