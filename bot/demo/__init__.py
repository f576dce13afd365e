"""`amibot demo`: the whole bot on one machine, with Slack, AWS and Redis emulated in process.

    amibot demo                      type commands at a prompt (or pipe them in)
    amibot demo --script FILE        play a script; exit 0 when every step passed, else 1
    amibot demo --script example     the bundled example (bot/demo/scripts/create.txt)

The bot is the production bot built by `bot.app.build`: the same handlers, services, worker,
tracker and outbox. Only its peers are emulated: Redis is fakeredis, AWS is moto (seeded with
example instances and older AMIs; a new image stays `pending` for a few seconds), Slack is
`bot.fakeslack.FakeSlack` on 127.0.0.1. Each `/ami` line becomes the form body Slack would
send, signed with the demo's signing secret and dispatched through Bolt as in HTTP mode; each
`click N` becomes a `block_actions` payload. Everything the bot sends to Slack is shown as
text as it arrives, buttons numbered `[1 Approve] [2 Reject]`.

Lines (the same at the prompt and in a script):

    /ami SUBCOMMAND ...     a slash command; the leading `/ami` may be left out
    click N                 click button [N] (a confirm dialog is confirmed)
    as USER                 act as alice (requester), bob (approver), carol (admin) or dave (no role)
    in CHANNEL              type in #general (the start), #ops, #amibot (the notify channel),
                            #random or #private (amibot is not a member of those two)
    instances               the example instances: name, id, region, state
    images [REGION]         the AMIs in the emulated account, with their state
    wait [SECONDS]          sleep; without a number: until no job is queued or tracking (at most 60 s)
    expect TEXT             some bot output since the last command or click contains TEXT
                            (waits up to the expect timeout, 20 s, for background output)
    expect-error TEXT       the last command or click was refused (⚠️/❌) with a message containing TEXT
    set available-after S   how long new images stay pending (default 4 s)
    set expect-timeout S    how long `expect` waits
    help, quit              (`/ami help` is the bot's help); `# ...` is a comment

`${NAME}` in any line is replaced: an instance name (`${web-1}`) by its id, `${job}` and `${ami}`
by the last job id and AMI id the bot mentioned. TEXT may be quoted.

In a script a step fails when: the bot refuses a command (its acknowledgement starts with ⚠️
or ❌) and the next line is not `expect-error` (only `expect` lines may come between); an
`expect` or `expect-error` is not met; a line is not understood; or anything raises. The run
stops at the first failure and ends with one summary line naming the failing line.
"""
