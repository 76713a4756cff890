namespace WeakSeg.Tests.Reliability;

/// <summary>Runs the command line in-process and captures its output.</summary>
public static class CliRunner
{
    static readonly object Gate = new();

    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        lock (Gate)
        {
            var previousOut = Console.Out;
            var previousErr = Console.Error;
            // Not disposed: Spectre's static AnsiConsole keeps the writer it first saw, and may write to it from a later test.
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            Console.SetOut(stdout);
            Console.SetError(stderr);
            try { return (WeakSeg.Cli.Program.Run(args), stdout.ToString(), stderr.ToString()); }
            finally { Console.SetOut(previousOut); Console.SetError(previousErr); }
        }
    }
}
