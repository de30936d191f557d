"""Alerting rules: one function per alert, every threshold, window and URL from the config.

Names and severities are an interface (Alertmanager routes, silences and docs/runbooks.md use
them). Every alert carries ``severity`` and ``service="pipeline"``, and the annotations summary
(a fixed sentence), description (the value, where, and what to do), resolved (a fixed sentence
saying the value is back), runbook_url, dashboard_url and, on numeric alerts, value. Alerts with
two severities follow node-mixin: the warning keeps firing above the critical level and
Alertmanager's inhibit rule mutes it while the critical one fires.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_exporter.mixin.config import WINDOW_SECONDS, Levels, MixinConfig, seconds
from pipeline_exporter.mixin.promql import on_target, percent, spoken
from pipeline_exporter.mixin.recording import outcome_ratio, sent_count
from pipeline_exporter.mixin.rules import Alert, Group

# Appended to a dashboard address: the alert's exporter, when it has one.
INSTANCE_VARIABLE = "{{with $labels.instance}}&var-instance={{.}}{{end}}"


def _dashboard(config: MixinConfig, uid: str) -> str:
    return config.dashboard(uid) + INSTANCE_VARIABLE


def _duration(seconds: int) -> str:
    """7200 -> ``2 hours``, 5400 -> ``90 minutes``."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "1 hour" if hours == 1 else f"{hours} hours"
    return f"{seconds // 60} minutes"


def _query(metric: str, labels: str = "job instance") -> str:
    """A Prometheus template pipeline that queries one series of the alert's own target."""
    names = labels.split()
    matchers = ", ".join(f"{name}=%q" for name in names)
    values = " ".join(f"$labels.{name}" for name in names)
    return f'printf "{metric}{{{matchers}}}" {values} | query'


# --------------------------------------------------------------------------- deliverability

@dataclass(frozen=True)
class Deliverability:
    """One deliverability ratio: which outcome of which channel, its levels and its words."""

    alert: str
    channel: str
    outcome: str              # the status counted: bounced, complained, failed
    levels: Levels
    happened: str             # "bounced", "were reported as spam", "failed"
    rate: str                 # "Email bounce rate"
    advice: str
    critical_advice: str = ""


def _both_windows(config: MixinConfig, spec: Deliverability, level: float) -> str:
    """The slow and the fast ratio over the level, with the slow window's volume guards."""
    sel = config.selector
    slow, fast = config.windows.slow, config.windows.fast
    where = f'{sel}, channel="{spec.channel}"'
    on = on_target("channel")
    return (f"{outcome_ratio(spec.outcome, slow)}{{{where}}} > {level:g}\n"
            f"and {on}\n{outcome_ratio(spec.outcome, fast)}{{{where}}} > {level:g}\n"
            f"and {on}\n{sent_count(slow)}{{{where}}} >= {config.thresholds.min_sends}\n"
            f"and {on}\nchannel_status:pipeline_outreach_sent:count{slow}{{{where}, status=\"{spec.outcome}\"}}"
            f" >= {config.thresholds.min_events}\n")


def _bad_batch(config: MixinConfig, spec: Deliverability, level: float) -> str:
    """The fast ratio alone over the level, with the fast window's own volume guards."""
    fast = config.windows.fast
    where = f'{config.selector}, channel="{spec.channel}"'
    on = on_target("channel")
    return (f"{outcome_ratio(spec.outcome, fast)}{{{where}}} > {level:g}\n"
            f"and {on}\n{sent_count(fast)}{{{where}}} >= {config.thresholds.min_sends}\n"
            f"and {on}\nchannel_status:pipeline_outreach_sent:count{fast}{{{where}, status=\"{spec.outcome}\"}}"
            f" >= {config.thresholds.min_events}\n")


def _guards(config: MixinConfig, spec: Deliverability, span: str) -> str:
    noun = {"bounced": "bounces", "complained": "complaints", "failed": "failures"}[spec.outcome]
    return (f"at least {config.thresholds.min_sends} sent and {config.thresholds.min_events} "
            f"{noun} in the {span} window")


def deliverability(config: MixinConfig, spec: Deliverability) -> list[Alert]:
    """Warning: both windows over the level. Critical: both over it, or a bad batch in the fast one."""
    slow, fast = config.windows.slow, config.windows.fast
    last_slow, last_fast = spoken(slow), spoken(fast)
    levels = spec.levels
    single = {"bounced": "bounce", "complained": "complaint", "failed": "failure"}[spec.outcome]
    common = dict(name=spec.alert, for_="15m", value="{{ $value | humanizePercentage }}",
                  runbook_url=config.runbook(spec.alert), area="deliverability",
                  dashboard_url=_dashboard(config, "pipeline-compliance"))
    scope = (f"{{{{ $value | humanizePercentage }}}} of the messages sent on channel {{{{ $labels.channel }}}} "
             f"by {{{{ $labels.instance }}}} in the last {last_slow} {spec.happened}")
    levels_text = (f"warning above {percent(levels.warning)}"
                   + (f", critical above {percent(levels.critical)}" if levels.critical else ""))
    alerts = [Alert(
        severity="warning", expr=_both_windows(config, spec, levels.warning),
        summary=f"{spec.rate} is above {percent(levels.warning)}.",
        description=(f"{scope}, and more than {percent(levels.warning)} of those sent in the last {last_fast} too "
                     f"({levels_text}). {spec.advice}"),
        resolved=(f"{spec.rate} is back under {percent(levels.warning)} for the messages sent in the last "
                  f"{last_fast} (or none was sent)."),
        condition=(f"{spec.outcome} / sent {spec.channel} > {percent(levels.warning)} over {slow} and over {fast}; "
                   + _guards(config, spec, slow)),
        why=(f"Two windows: the {slow} ratio says the problem is real, the {fast} ratio that it is still "
             f"happening, so the alert clears within about {fast} of the fix. A single {single} "
             "never fires: the volume and event guards need enough of both. `for: 15m` rides out an "
             "exporter run that lands between a send and its outcome."),
        **common)]
    if levels.critical is not None:
        alerts.append(Alert(
            severity="critical",
            expr=f"(\n{_indent(_both_windows(config, spec, levels.critical))})\nor\n"
                 f"(\n{_indent(_bad_batch(config, spec, levels.critical))})\n",
            summary=f"{spec.rate} is above {percent(levels.critical)}; the sending account is at risk.",
            description=(f"More than {percent(levels.critical)} of the messages sent on channel "
                         f"{{{{ $labels.channel }}}} by {{{{ $labels.instance }}}} {spec.happened}, over the "
                         f"last {last_slow} and the last {last_fast}, or in a batch of at least "
                         f"{config.thresholds.min_sends} sent in the last {last_fast} (value "
                         f"{{{{ $value | humanizePercentage }}}}; critical above {percent(levels.critical)}). "
                         f"{spec.critical_advice or spec.advice}"),
            resolved=(f"{spec.rate} is back under {percent(levels.critical)} for the messages sent in "
                      f"the last {last_fast} (or none was sent)."),
            condition=(f"> {percent(levels.critical)} over {slow} and over {fast} with the guards above, or "
                       f"> {percent(levels.critical)} over {fast} alone with " + _guards(config, spec, fast)),
            why=f"A bad batch fires on the {fast} window alone at the critical level.",
            **common))
    return alerts


def _indent(text: str) -> str:
    return "".join(f"  {line}" if line.strip() else line for line in text.splitlines(True))


def email_bounce_rate_high(config: MixinConfig) -> list[Alert]:
    return deliverability(config, Deliverability(
        "EmailBounceRateHigh", "email", "bounced", config.thresholds.bounce_rate, "bounced",
        "Email bounce rate",
        "Check sender reputation and list hygiene: drop invalid, role and old addresses, verify "
        "SPF/DKIM/DMARC for the sending domain, and slow email outreach until the rate falls.",
        "Pause email outreach now, then check sender reputation and list hygiene: drop invalid, "
        "role and old addresses and verify SPF/DKIM/DMARC before resuming."))


def email_complaint_rate_high(config: MixinConfig) -> list[Alert]:
    return deliverability(config, Deliverability(
        "EmailComplaintRateHigh", "email", "complained", config.thresholds.complaint_rate,
        "were reported as spam", "Email spam complaint rate",
        "Review the proposal templates and targeting, make the unsubscribe link obvious and "
        "honour opt-outs at once.",
        "Pause email outreach now, review templates and targeting, and check that opt-outs and "
        "the unsubscribe link work (CAN-SPAM) before resuming."))


def sms_failure_rate_high(config: MixinConfig) -> list[Alert]:
    return deliverability(config, Deliverability(
        "SmsFailureRateHigh", "sms", "failed", Levels(config.thresholds.sms_failure_rate.warning),
        "failed", "SMS failure rate",
        "This is usually carrier filtering: check Twilio's error codes, the sender number's "
        "registration (A2P 10DLC), message content and sending rate, and drop invalid or "
        "landline numbers."))


# --------------------------------------------------------------------------- HTTP errors

def http_forbidden_errors_high(config: MixinConfig) -> list[Alert]:
    span, limit = config.windows.fast, config.thresholds.forbidden_per_window
    return [Alert(
        name="HttpForbiddenErrorsHigh", severity="warning", for_="10m",
        expr=f'source_code:pipeline_http_errors:count{span}{{{config.selector}, code="403"}} > {limit}\n',
        summary="A source is getting many HTTP 403 Forbidden answers (IP burnout).",
        description=(f"Source {{{{ $labels.source }}}} on {{{{ $labels.instance }}}} got {{{{ $value | humanize }}}} "
                     f"HTTP 403 answers in the last {spoken(span)} (threshold {limit}). The IP is probably burnt: "
                     "move the scraper to residential proxies or rotate IPs and slow the crawl; for an "
                     "API source, check its key and plan."),
        value=f"{{{{ $value | humanize }}}} in {span}",
        resolved=f"HTTP 403 answers from this source are back to {limit} or fewer in the last {spoken(span)}.",
        runbook_url=config.runbook("HttpForbiddenErrorsHigh"),
        dashboard_url=_dashboard(config, "pipeline-system"),
        condition=f"> {limit} HTTP 403 from one `source` in the last {span}",
        why=("Counted from the rows' own timestamps, so a new source's first burst counts in full and "
             "a prune or a restart moves nothing. 10 m more confirms it is not one crawl batch."))]


def http_rate_limit_errors_high(config: MixinConfig) -> list[Alert]:
    span, limit = config.windows.burst, config.thresholds.rate_limited_per_window
    return [Alert(
        name="HttpRateLimitErrorsHigh", severity="warning", for_="5m",
        expr=f'source_code:pipeline_http_errors:count{span}{{{config.selector}, code="429"}} > {limit}\n',
        summary="A source is rate-limiting the pipeline (HTTP 429 Too Many Requests).",
        description=(f"Source {{{{ $labels.source }}}} on {{{{ $labels.instance }}}} answered "
                     f"{{{{ $value | humanize }}}} "
                     f"HTTP 429 in the last {spoken(span)} (threshold {limit}). Slow down: lower concurrency, add "
                     "backoff, crawl more slowly or use residential proxies for the scraper, and check the "
                     "API plan's limits."),
        value=f"{{{{ $value | humanize }}}} in {span}",
        resolved=f"HTTP 429 answers from this source are back to {limit} or fewer in the last {spoken(span)}.",
        runbook_url=config.runbook("HttpRateLimitErrorsHigh"),
        dashboard_url=_dashboard(config, "pipeline-system"),
        condition=f"> {limit} HTTP 429 from one `source` in the last {span}",
        why="Every 429 is a lost request, so a short 5 m.")]


# --------------------------------------------------------------------------- system health

def code_coverage_low(config: MixinConfig) -> list[Alert]:
    level = config.thresholds.coverage.warning
    target = config.thresholds.coverage_target
    return [Alert(
        name="CodeCoverageLow", severity="warning", for_="30m",
        expr=f'pipeline_code_coverage_ratio{{{config.selector}, metric="lines"}} < {level:g}\n',
        summary=f"Line coverage of the pipeline's code is below {percent(level)}.",
        description=(f"Line coverage reported to {{{{ $labels.instance }}}} is {{{{ $value | humanizePercentage }}}} "
                     f"(alert below {percent(level)}, target {percent(target)}). Add tests for the files that "
                     "lost coverage (see the coverage report) before merging more changes."),
        value="{{ $value | humanizePercentage }}",
        resolved=f"Line coverage is back at {percent(level)} or more.",
        runbook_url=config.runbook("CodeCoverageLow"), dashboard_url=_dashboard(config, "pipeline-system"),
        condition=f'`pipeline_code_coverage_ratio{{metric="lines"}}` < {percent(level)} (target {percent(target)})',
        why="Coverage changes only when the suite runs; 30 m skips a report read mid-run.")]


def cron_job_failed(config: MixinConfig) -> list[Alert]:
    sel = config.selector
    last_success = _query("time() - pipeline_cron_job_last_success_timestamp_seconds", "job instance cron_job")
    return [Alert(
        name="CronJobFailed", severity="warning", for_="10m",
        expr=(f"pipeline_cron_job_last_run_failed{{{sel}}} == 1\nand {on_target('cron_job')}\n"
              f"pipeline_cron_job_enabled{{{sel}}} == 1\n"),
        summary="The latest run of a cron job failed.",
        description=("The latest finished run of cron job {{ $labels.cron_job }} on {{ $labels.instance }} failed; "
                     f"its last success was {{{{ with {last_success} }}}}"
                     "{{ . | first | value | humanizeDuration }} ago"
                     "{{ else }}never recorded{{ end }}. Read the run's error_message in cron_job_logs, fix "
                     "the cause and rerun the job; the alert clears when a run succeeds."),
        resolved="The cron job's latest run succeeded.",
        runbook_url=config.runbook("CronJobFailed"), dashboard_url=_dashboard(config, "pipeline-system"),
        condition="an enabled job's `pipeline_cron_job_last_run_failed == 1`",
        why="10 m gives a job on a short interval the chance to succeed on its next run.")]


def cron_job_stale(config: MixinConfig) -> list[Alert]:
    sel = config.selector
    factor = config.thresholds.cron_stale_intervals
    on = on_target("cron_job")
    last_run = _query("pipeline_cron_job_last_run_timestamp_seconds", "job instance cron_job")
    times = "twice" if factor == 2 else f"{factor:g} times"
    return [Alert(
        name="CronJobStale", severity="warning", for_="5m",
        expr=(f"(\n  (time() - pipeline_cron_job_last_run_timestamp_seconds{{{sel}}})\n    > {on}\n"
              f"  {factor:g} * pipeline_cron_job_expected_interval_seconds{{{sel}}}\n  and {on}\n"
              f"  pipeline_cron_job_enabled{{{sel}}} == 1\n)\nor\n(\n"
              f"  pipeline_cron_job_enabled{{{sel}}} == 1\n  unless {on}\n"
              f"  pipeline_cron_job_last_run_timestamp_seconds{{{sel}}}\n)\n"),
        summary=f"An enabled cron job has not started for more than {times} its interval.",
        description=("Enabled cron job {{ $labels.cron_job }} on {{ $labels.instance }}"
                     f"{{{{- with {last_run} }}}} last started {{{{ $value | humanizeDuration }}}} ago, more than "
                     f"{times} its expected interval.{{{{- else }}}} has never started: cron_job_logs "
                     "holds no run of it.{{- end }} Check that the scheduler runs, that the job is not hung "
                     "in a previous run (pipeline_cron_job_running) and that it was not disabled by "
                     "mistake elsewhere."),
        value=(f"{{{{ with {last_run} }}}}{{{{ $value | humanizeDuration }}}} since the last start"
               "{{ else }}never started{{ end }}"),
        resolved="The cron job has started again within its expected interval.",
        runbook_url=config.runbook("CronJobStale"), dashboard_url=_dashboard(config, "pipeline-system"),
        condition=(f"an enabled job: `time() - last_run > {factor:g} × expected_interval`, "
                   "or no last run at all"),
        why=("The `or` branch covers an enabled job that has never run: it has no last-run series. "
             "5 m absorbs clock skew and a run that is just starting."))]


def sites_stuck(config: MixinConfig) -> list[Alert]:
    limit = config.thresholds.sites_stuck
    return [Alert(
        name="SitesStuck", severity="warning", for_="1h", area="flow",
        expr=f"sum by (job, instance, status) (pipeline_sites_stuck{{{config.selector}}}) > {limit}\n",
        summary="Many sites are stuck in one pipeline stage.",
        description=("{{ $value | humanize }} sites on {{ $labels.instance }} have been in status "
                     "{{ $labels.status }} longer than the stuck threshold (alert above "
                     f"{limit} for 1 h). The stage that picks up {{{{ $labels.status }}}} sites is probably "
                     "not running or failing: check its cron job and the stuck sites by error type on the "
                     "Pipeline Health dashboard."),
        value="{{ $value | humanize }} sites",
        resolved=f"Stuck sites in this status are back to {limit} or fewer.",
        runbook_url=config.runbook("SitesStuck"), dashboard_url=_dashboard(config, "pipeline-health"),
        condition=f"> {limit} sites stuck in one processing status",
        why="Per status (summed over error_type); the full 1 h lets a stage catching up drain first.")]


def e2e_tests_failing(config: MixinConfig) -> list[Alert]:
    return [Alert(
        name="E2ETestsFailing", severity="warning", for_="5m",
        expr=f'pipeline_e2e_tests{{{config.selector}, result="failed"}} > 0\n',
        summary="The latest end-to-end test report has failed tests.",
        description=("{{ $value | humanize }} test(s) of end-to-end suite {{ $labels.suite }} failed in the "
                     "latest report read by {{ $labels.instance }}. Open the JUnit report "
                     "(test-results/e2e-junit.xml), fix the failing cases or the service they depend on, "
                     "and rerun the suite."),
        value="{{ $value | humanize }} failed",
        resolved="The latest end-to-end report of this suite has no failed tests.",
        runbook_url=config.runbook("E2ETestsFailing"), dashboard_url=_dashboard(config, "pipeline-system"),
        condition="a suite of the latest e2e report has failed tests",
        why="The report only changes when the suite runs; 5 m skips a report caught mid-write.")]


def database_integrity_check_failed(config: MixinConfig) -> list[Alert]:
    return [Alert(
        name="DatabaseIntegrityCheckFailed", severity="critical", for_="0m",
        expr=f"pipeline_database_integrity_ok{{{config.selector}}} == 0\n",
        summary="The pipeline database failed its integrity check.",
        description=("The latest integrity check of the pipeline database read by {{ $labels.instance }} "
                     "failed (SQLite quick_check). Stop the pipeline's writers, copy the database file with "
                     "its -wal and -shm files, run PRAGMA integrity_check on the copy, then repair or "
                     "restore from backup."),
        resolved="The latest integrity check of the pipeline database passed.",
        runbook_url=config.runbook("DatabaseIntegrityCheckFailed"),
        dashboard_url=_dashboard(config, "pipeline-system"),
        condition="`pipeline_database_integrity_ok == 0`",
        why=("No `for`: the input is one complete quick_check, re-exported unchanged until the next "
             "one, so it cannot flap and a `for` would only delay a critical page."))]


def host_disk_will_fill(config: MixinConfig) -> list[Alert]:
    sel = config.selector
    pace, horizon = config.thresholds.disk_fill_pace, config.thresholds.disk_fill_horizon
    horizon_seconds = seconds(horizon)
    history = seconds(pace) // 2
    return [Alert(
        name="HostDiskWillFillIn24h", severity="warning", for_="1h",
        expr=(f"predict_linear(pipeline_host_disk_used_bytes{{{sel}}}[{pace}], {horizon_seconds})\n"
              f"  > {on_target('path')}\npipeline_host_disk_total_bytes{{{sel}}}\n"
              f"and {on_target('path')}\npipeline_host_disk_used_bytes{{{sel}}} offset {history}s\n"),
        summary=f"The database's filesystem will be full within {horizon}.",
        description=(f"At the pace of the last {pace}, the filesystem of {{{{ $labels.path }}}} on "
                     f"{{{{ $labels.instance }}}} would hold {{{{ $value | humanize1024 }}}}B in {horizon}, more than "
                     "its size. A full disk stops the pipeline's writes and can corrupt SQLite: find what "
                     "grows (the database, its WAL, logs, backups) and free space or grow the disk now."),
        value=f"{{{{ $value | humanize1024 }}}}B predicted in {horizon}",
        resolved=f"The filesystem is no longer predicted to fill within {horizon}.",
        runbook_url=config.runbook("HostDiskWillFillIn24h"), dashboard_url=_dashboard(config, "pipeline-system"),
        condition=(f"the database's filesystem fills within {horizon} at the last {pace}'s pace, with at "
                   f"least half of that {pace} in Prometheus"),
        why=(f"The `offset` guard: a Prometheus that started minutes ago would extrapolate a few "
             f"samples {horizon} ahead; half of the {pace} must be there. `for: 1h` so that one burst "
             "of writes (a backup, a VACUUM) does not page by itself."))]


# --------------------------------------------------------------------------- flow and cost

def outreach_stalled(config: MixinConfig) -> list[Alert]:
    sel = config.selector
    fast, slow = config.windows.fast, config.windows.slow
    stall = config.thresholds.outreach_stall_for
    silence = _duration(WINDOW_SECONDS[fast] + seconds(stall))
    on = on_target("channel")
    return [Alert(
        name="OutreachStalled", severity="warning", for_=stall, area="flow",
        expr=(f"sum by (job, instance, channel) (pipeline_outreach_queued{{{sel}}}) > 0\n"
              f"and {on}\n{sent_count(slow)}{{{sel}}} >= {config.thresholds.min_sends}\n"
              f"unless {on}\n{sent_count(fast)}{{{sel}}} > 0\n"),
        summary="Outreach is queued but nothing has been sent for hours on a channel that was sending.",
        description=("{{ $value | humanize }} messages are queued on channel {{ $labels.channel }} of "
                     f"{{{{ $labels.instance }}}} and none was sent for at least {silence}, although the "
                     f"channel sent at least {config.thresholds.min_sends} in the last {spoken(slow)}. "
                     "Check the sending "
                     "job (CronJobFailed / CronJobStale), the provider's account and API key, and HTTP "
                     "errors from the provider."),
        value="{{ $value | humanize }} queued",
        resolved="The channel is sending again (or its queue is empty).",
        runbook_url=config.runbook("OutreachStalled"), dashboard_url=_dashboard(config, "pipeline-outreach"),
        condition=(f"messages queued, none sent in the last {fast} for {stall}, on a channel that sent "
                   f"at least {config.thresholds.min_sends} in the last {slow}"),
        why=(f"`unless` rather than `== 0`: a channel without sends in the {fast} window may have no "
             f"series at all there. A channel that sends fewer than {config.thresholds.min_sends} a "
             "day has quiet hours as a matter of course: the volume guard keeps it silent."))]


def reply_rate_dropped(config: MixinConfig) -> list[Alert]:
    sel = config.selector
    slow, baseline = config.windows.slow, config.windows.baseline
    thresholds = config.thresholds
    factor = thresholds.reply_drop_factor
    fraction = "half" if factor == 0.5 else f"{factor:g} times"
    baseline_rate = _query(outcome_ratio("replied", baseline), "job instance channel")
    on = on_target("channel")
    return [Alert(
        name="ReplyRateDropped", severity="warning", for_="1h", area="conversations",
        expr=(f"{outcome_ratio('replied', slow)}{{{sel}}}\n  < {on}\n"
              f"{factor:g} * {outcome_ratio('replied', baseline)}{{{sel}}}\n"
              f"and {on}\n{sent_count(slow)}{{{sel}}} >= {thresholds.min_sends}\n"
              f"and {on}\n{sent_count(baseline)}{{{sel}}} >= {thresholds.min_sends}\n"
              f"and {on}\n{sent_count(slow)}{{{sel}}} * {on} {outcome_ratio('replied', baseline)}{{{sel}}}"
              f" >= {thresholds.reply_min_expected}\n"),
        summary=f"The reply rate has dropped under {fraction} its rate over the last {spoken(baseline)}.",
        description=(f"Channel {{{{ $labels.channel }}}} of {{{{ $labels.instance }}}} got replies to "
                     f"{{{{ $value | humanizePercentage }}}} of its outreach in the last {spoken(slow)}, "
                     f"under {fraction} its rate over the last {spoken(baseline)}{{{{ with {baseline_rate} }}}}"
                     " ({{ . | first | value | humanizePercentage }}){{ end }}. Check recent template or "
                     "targeting changes, deliverability (bounces, spam folder) and that inbound replies "
                     "are still recorded (the inbound webhook or mailbox poller)."),
        value="{{ $value | humanizePercentage }}",
        resolved=f"The reply rate is back above {fraction} its rate over the last {spoken(baseline)}.",
        runbook_url=config.runbook("ReplyRateDropped"), dashboard_url=_dashboard(config, "pipeline-outreach"),
        condition=(f"the {slow} reply rate < {factor:g} × the {baseline} rate; ≥ {thresholds.min_sends} sent in "
                   f"each window and ≥ {thresholds.reply_min_expected} replies expected in {slow} at the "
                   f"{baseline} rate"),
        why=("The expected-replies guard keeps a channel that gets a reply a day from firing on a "
             "quiet day; 1 h lets a batch sent minutes ago get its first replies."))]


def llm_budget_burn_high(config: MixinConfig) -> list[Alert]:
    sel = config.selector
    on = on_target("provider")
    budget = f"provider:pipeline_llm_budget_usd:max{{{sel}}}"
    common = dict(name="LlmBudgetBurnHigh", value="${{ $value | printf \"%.2f\" }}", area="flow",
                  runbook_url=config.runbook("LlmBudgetBurnHigh"),
                  dashboard_url=_dashboard(config, "pipeline-outreach"))
    budget_text = _query("provider:pipeline_llm_budget_usd:max", "job instance provider")
    of_budget = f"the ${{{{ with {budget_text} }}}}{{{{ . | first | value | printf \"%.2f\" }}}}{{{{ end }}}} budget"
    return [
        Alert(severity="warning", for_="1h",
              expr=f"provider:pipeline_llm_cost_usd:projected_month_end{{{sel}}}\n  > {on}\n{budget}\n",
              summary="This month's LLM cost is on course to exceed the budget.",
              description=(f"At the pace of the last {spoken(config.windows.slow)}, LLM cost for provider "
                           f"{{{{ $labels.provider }}}} on {{{{ $labels.instance }}}} will reach "
                           f"${{{{ $value | printf \"%.2f\" }}}} by the end of "
                           f"the month, over {of_budget}. Move expensive stages to a cheaper model, raise "
                           "the score threshold before proposals, or raise the budget on purpose."),
              resolved="This month's LLM cost is no longer projected to exceed the budget.",
              condition=(f"this month's LLM cost, projected to the month's end at the last "
                         f"{config.windows.slow}'s pace, exceeds the budget"),
              why="The projection moves with the day's pace; 1 h keeps one busy hour from warning.",
              **common),
        Alert(severity="critical", for_="5m",
              expr=f"provider:pipeline_llm_cost_usd_month_to_date:sum{{{sel}}}\n  > {on}\n{budget}\n",
              summary="This month's LLM cost has exceeded the budget.",
              description=(f"LLM cost for provider {{{{ $labels.provider }}}} on {{{{ $labels.instance }}}} is "
                           f"${{{{ $value | printf \"%.2f\" }}}} this month, over {of_budget}. Pause the stages "
                           "that spend most (Cost by stage) or raise the budget on purpose."),
              resolved="This month's LLM cost is back within the budget (a new month, or a raised budget).",
              condition="this month's LLM cost already exceeds the budget",
              **common),
    ]


# --------------------------------------------------------------------------- the exporter

def pipeline_exporter_down(config: MixinConfig) -> list[Alert]:
    sel = config.selector
    return [Alert(
        name="PipelineExporterDown", severity="critical", for_="5m", area="exporter",
        expr=f"up{{{sel}}} == 0\nor\nabsent(up{{{sel}}})\n",
        summary="Prometheus cannot scrape the pipeline exporter.",
        description=("{{ if $labels.instance }}Prometheus has failed to scrape {{ $labels.instance }} "
                     "(job {{ $labels.job }}) for 5 minutes{{ else }}Prometheus has had no target for job "
                     "{{ $labels.job }} for 5 minutes{{ end }}, so every pipeline metric and alert from it "
                     "is blind. Check that the exporter runs (container or service status), its /-/healthy "
                     "endpoint and logs, the network path, and the scrape_configs in prometheus.yml "
                     "(Status > Targets in Prometheus)."),
        resolved="Prometheus scrapes the pipeline exporter again.",
        runbook_url=config.runbook("PipelineExporterDown"), dashboard_url=_dashboard(config, "pipeline-system"),
        condition=f"`up{{{sel}}} == 0`, or no such target at all (`absent`)",
        why=("Two ways to be blind in one rule (one name for routing, silences and inhibition): the "
             "target is down, or there is none. 5 m is longer than a restart or redeploy."))]


def pipeline_exporter_query_failing(config: MixinConfig) -> list[Alert]:
    held = config.thresholds.query_failing_for
    last_success = _query("time() - pipeline_exporter_query_last_success_timestamp_seconds", "job instance query")
    return [Alert(
        name="PipelineExporterQueryFailing", severity="warning", for_=held, area="exporter",
        expr=f"pipeline_exporter_query_up{{{config.selector}}} == 0\n",
        summary="An exporter query keeps failing.",
        description=(f"The latest run of query {{{{ $labels.query }}}} of {{{{ $labels.instance }}}} failed and no run "
                     f"has succeeded for {_duration(seconds(held))}"
                     f"{{{{ with {last_success} }}}}; the last success was "
                     "{{ . | first | value | humanizeDuration }} ago"
                     "{{ else }}; none has succeeded since the exporter started{{ end }}. "
                     "Its metrics keep their last values until they go stale, then disappear. Read the "
                     "exporter's log for the query's error (schema change, missing table, locked or "
                     "unreachable database, a report path set but missing) and check "
                     "pipeline_exporter_database_up."),
        resolved="The query's latest run succeeded.",
        runbook_url=config.runbook("PipelineExporterQueryFailing"),
        dashboard_url=_dashboard(config, "pipeline-system"),
        condition=f"`pipeline_exporter_query_up == 0` for {held}",
        why=("query_up holds the latest run's result until the next run, so an hourly query that fails "
             "fires once and stays firing instead of flapping, and a report file that is not in use "
             "(its default path missing) is not an error at all."))]


# --------------------------------------------------------------------------- alerting itself

def watchdog(config: MixinConfig) -> list[Alert]:
    return [Alert(
        name="Watchdog", severity="none", for_="0m", area="none",
        expr="vector(1)\n",
        summary="The alerting pipeline works: this alert always fires.",
        description=("This alert fires all the time so that a dead man's switch outside this stack hears "
                     "from Alertmanager every few minutes. If the switch stops hearing it, Prometheus, "
                     "the rules or Alertmanager are broken: no other alert can reach anyone either."),
        resolved="The Watchdog stopped: Prometheus no longer evaluates the pipeline's rules.",
        runbook_url=config.runbook("Watchdog"), dashboard_url=config.dashboard("pipeline-overview"),
        condition="always: proves the alerting pipeline works end to end (routed to the dead man's switch)",
        why="Routed by severity=\"none\" to the dead man's switch receiver in alertmanager.yml.")]


def prometheus_rule_failures(config: MixinConfig) -> list[Alert]:
    sel = f'job="{config.prometheus_job}"'
    return [Alert(
        name="PrometheusRuleFailures", severity="warning", for_="15m", area="exporter",
        expr=f"increase(prometheus_rule_evaluation_failures_total{{{sel}}}[5m]) > 0\n",
        summary="Prometheus fails to evaluate some rules.",
        description=("Prometheus {{ $labels.instance }} had {{ $value | humanize }} failed rule evaluations in "
                     "group {{ $labels.rule_group }} in the last 5 minutes: the alerts of that group are "
                     "blind. Status > Rules in Prometheus shows each rule's last error."),
        value="{{ $value | humanize }} failures in 5m",
        resolved="Prometheus evaluates every rule of the group again.",
        runbook_url=config.runbook("PrometheusRuleFailures"), dashboard_url=config.dashboard("pipeline-system"),
        condition="a rule evaluation fails",
        why="Prometheus's own counter (not the database's): increase() is right here.")]


def prometheus_not_connected_to_alertmanagers(config: MixinConfig) -> list[Alert]:
    sel = f'job="{config.prometheus_job}"'
    return [Alert(
        name="PrometheusNotConnectedToAlertmanagers", severity="warning", for_="10m", area="exporter",
        expr=f"max_over_time(prometheus_notifications_alertmanagers_discovered{{{sel}}}[5m]) < 1\n",
        summary="Prometheus has no Alertmanager to send alerts to.",
        description=("Prometheus {{ $labels.instance }} has discovered no Alertmanager for 10 minutes: "
                     "alerts fire in Prometheus but reach nobody. Check the alerting section of "
                     "prometheus.yml and that Alertmanager runs and is reachable."),
        resolved="Prometheus is connected to an Alertmanager again.",
        runbook_url=config.runbook("PrometheusNotConnectedToAlertmanagers"),
        dashboard_url=config.dashboard("pipeline-system"),
        condition="Prometheus has no Alertmanager to send to",
        why="The warning itself can still reach someone only through another Prometheus; see the runbook.")]


def alertmanager_failed_to_send_alerts(config: MixinConfig) -> list[Alert]:
    sel = f'job="{config.alertmanager_job}"'
    by = "sum by (job, instance, integration)"
    return [Alert(
        name="AlertmanagerFailedToSendAlerts", severity="warning", for_="5m", area="exporter",
        expr=(f"{by} (rate(alertmanager_notifications_failed_total{{{sel}}}[5m]))\n/\n"
              f"{by} (rate(alertmanager_notifications_total{{{sel}}}[5m]))\n> 0.01\n"),
        summary="Alertmanager fails to send notifications to a receiver.",
        description=("Alertmanager {{ $labels.instance }} failed to send {{ $value | humanizePercentage }} of "
                     "its {{ $labels.integration }} notifications in the last 5 minutes. Check its log for "
                     "the error and the receiver's credentials in secrets/ (SMTP password, Slack webhook)."),
        value="{{ $value | humanizePercentage }}",
        resolved="Alertmanager delivers its notifications again.",
        runbook_url=config.runbook("AlertmanagerFailedToSendAlerts"),
        dashboard_url=config.dashboard("pipeline-system"),
        condition="more than 1 % of one integration's notifications fail",
        why="Alertmanager's own counters; by integration because one broken receiver is the usual case.")]


def groups(config: MixinConfig) -> list[Group]:
    """Every alert group, in the order the file lists them."""
    return [
        Group("pipeline-exporter.outreach.alerts", tuple(
            email_bounce_rate_high(config) + email_complaint_rate_high(config)
            + sms_failure_rate_high(config) + outreach_stalled(config) + reply_rate_dropped(config)),
            why="Deliverability and the outreach flow, on the windowed gauges' recording rules."),
        Group("pipeline-exporter.http.alerts", tuple(
            http_forbidden_errors_high(config) + http_rate_limit_errors_high(config)),
            why="IP burnout and rate limiting, per source (the scraper or an external API)."),
        Group("pipeline-exporter.system.alerts", tuple(
            code_coverage_low(config) + cron_job_failed(config) + cron_job_stale(config)
            + sites_stuck(config) + e2e_tests_failing(config) + database_integrity_check_failed(config)
            + host_disk_will_fill(config)),
            why="Pipeline and system health."),
        Group("pipeline-exporter.cost.alerts", tuple(llm_budget_burn_high(config)),
              why="LLM spend against the monthly budget (no budget set: no alert)."),
        Group("pipeline-exporter.exporter.alerts", tuple(
            pipeline_exporter_down(config) + pipeline_exporter_query_failing(config)),
            why="The exporter itself: without it every alert above is blind."),
        Group("pipeline-exporter.meta.alerts", tuple(
            watchdog(config) + prometheus_rule_failures(config)
            + prometheus_not_connected_to_alertmanagers(config)
            + alertmanager_failed_to_send_alerts(config)),
            why="The alerting pipeline itself: Prometheus, its rules and Alertmanager."),
    ]
