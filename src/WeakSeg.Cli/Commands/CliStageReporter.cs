using WeakSeg.Pipelines;

namespace WeakSeg.Cli.Commands;

/// <summary>Stage progress as Spectre progress bars, log lines on stdout (demo, pipeline).</summary>
internal sealed class CliStageReporter : IStageReporter
{
    public T Run<T>(string title, Func<IProgress<ProgressUpdate>?, T> work) => CliProgress.Run(title, p => work(p));
    public void Log(string line) => Console.WriteLine(line);
}
