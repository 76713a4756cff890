namespace WeakSeg.Tests.Reliability;

/// <summary>Runs the command line in-process and captures its output.</summary>
public static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args) => WeakSeg.Tests.Evaluation.EvalTestData.RunCli(args);
}
