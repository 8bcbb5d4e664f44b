"""The `ml-connector` command. Each area adds its subcommands in a module of this package."""

from __future__ import annotations

import click

from . import (
    agent_cmd,
    agent_doctor_cmd,
    audit_cmd,
    bench_cmd,
    config_cmd,
    demo_cmd,
    dev_cmd,
    inbox_cmd,
    payments_cmd,
    payouts_cmd,
    ping_cmd,
    receiver_cmd,
    review_cmd,
    sandbox_cmd,
    secrets_cmd,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ml-connector-dagster")
def main() -> None:
    """Post GoCardless payments to Sage 100 AR as cash receipts, exactly once, on Dagster."""


main.add_command(config_cmd.config)
main.add_command(secrets_cmd.secrets)
main.add_command(inbox_cmd.inbox)
main.add_command(audit_cmd.audit)
main.add_command(payments_cmd.payments)
main.add_command(payouts_cmd.payouts)
main.add_command(receiver_cmd.receiver)
main.add_command(sandbox_cmd.sandbox)
main.add_command(agent_cmd.agent)
agent_cmd.agent.add_command(agent_doctor_cmd.doctor)
main.add_command(review_cmd.review)
main.add_command(demo_cmd.demo)
main.add_command(dev_cmd.dev)
main.add_command(ping_cmd.ping)
main.add_command(bench_cmd.bench)
