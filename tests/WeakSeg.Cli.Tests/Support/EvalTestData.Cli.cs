namespace WeakSeg.Tests.Evaluation;

/// <summary>The in-process CLI runner of the CLI tests (the datasets part is shared with the library tests).</summary>
internal static partial class EvalTestData
{
    static readonly object ConsoleGate = new();

    /// <summary>Runs the command line in-process and captures its output (one run at a time: the console is process-wide).</summary>
    public static (int Exit, string Out, string Err) RunCli(params string[] args)
    {
        lock (ConsoleGate)
        {
            var oldOut = Console.Out; var oldErr = Console.Error;
            // Not disposed: Spectre's static AnsiConsole keeps the writer it first saw, and may write to it from a later test.
            var @out = new StringWriter(); var err = new StringWriter();
            Console.SetOut(@out); Console.SetError(err);
            try
            {
                int code = WeakSeg.Cli.Program.Run(args);
                return (code, @out.ToString(), err.ToString());
            }
            finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        }
    }
}
