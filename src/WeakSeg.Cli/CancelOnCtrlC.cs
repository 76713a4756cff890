using System.Runtime.InteropServices;

namespace WeakSeg.Cli;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM (what <c>docker stop</c>, systemd and batch schedulers send) request cancellation instead of ending the
/// process: training writes a checkpoint at the end of its step and returns, so a rerun resumes exactly. The exit code is then
/// 128 + the signal's number, as a shell reports a process ended by it: 130 for SIGINT, 143 for SIGTERM. A second signal ends the
/// process at once (the default action).
/// </summary>
internal sealed class CancelOnCtrlC : IDisposable
{
    readonly CancellationTokenSource _source = new();
    readonly List<PosixSignalRegistration> _registrations = [];
    int _signal;                                                            // the first signal's number; 0 = none yet

    CancelOnCtrlC()
    {
        Handle(PosixSignal.SIGINT, 2, "Ctrl-C");
        Handle(PosixSignal.SIGTERM, 15, "SIGTERM");
    }

    void Handle(PosixSignal signal, int number, string name)
    {
        try
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                if (Interlocked.CompareExchange(ref _signal, number, 0) != 0) return;        // a second signal: the default action
                context.Cancel = true;
                Console.Error.WriteLine($"{name}: stopping after this step, with a checkpoint (a second Ctrl-C or SIGTERM kills)…");
                _source.Cancel();
            }));
        }
        catch (PlatformNotSupportedException) { }                           // a platform without this signal: its default action
    }

    public static CancelOnCtrlC Install() => new();
    public CancellationToken Token => _source.Token;

    /// <summary>128 + the number of the signal that stopped the run (130 SIGINT, 143 SIGTERM); 130 when none did.</summary>
    public int ExitCode => 128 + (Volatile.Read(ref _signal) is > 0 and var n ? n : 2);

    /// <summary>Runs <paramref name="work"/>; a stop it raises because of a signal prints one line (what stopped it and
    /// <paramref name="howToResume"/>) and returns <see cref="ExitCode"/>.</summary>
    public int Run(Func<CancellationToken, int> work, string howToResume)
    {
        try { return work(Token); }
        catch (OperationCanceledException) when (Token.IsCancellationRequested)
        {
            Console.Error.WriteLine($"stopped by {(ExitCode == 143 ? "SIGTERM" : "Ctrl-C")}; {howToResume}");
            return ExitCode;
        }
    }

    /// <summary>Stops handling the signals (the token source is left to the collector, so a late signal never meets a disposed one).</summary>
    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
    }
}
