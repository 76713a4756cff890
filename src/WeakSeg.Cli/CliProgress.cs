using Spectre.Console;
using WeakSeg;

namespace WeakSeg.Cli;

/// <summary>Spectre.Console progress bar (percentage, elapsed, ETA) fed by library <see cref="ProgressUpdate"/>s.</summary>
public static class CliProgress
{
    /// <summary>Runs <paramref name="work"/> with a progress bar titled <paramref name="title"/>; plain output when not a terminal.</summary>
    public static T Run<T>(string title, Func<IProgress<ProgressUpdate>, T> work)
    {
        if (WeakSeg.Runtime.ProcessGroup.LaunchedByMpi && !WeakSeg.Runtime.ProcessGroup.World.IsRoot) return work(Silent.Instance);   // rank 0 reports for the job
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsErrorRedirected && Console.IsOutputRedirected)
            return work(new LineProgress(title));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                     new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: 1);
                result = work(new SpectreProgress(task, title));
                task.Value = task.MaxValue;
            });
        return result;
    }

    public static void Run(string title, Action<IProgress<ProgressUpdate>> work) => Run<int>(title, p => { work(p); return 0; });

    sealed class Silent : IProgress<ProgressUpdate>
    {
        public static readonly Silent Instance = new();
        public void Report(ProgressUpdate value) { }
    }

    sealed class SpectreProgress(ProgressTask task, string title) : IProgress<ProgressUpdate>
    {
        public void Report(ProgressUpdate u)
        {
            task.MaxValue = Math.Max(1, u.Total);
            task.Value = u.Done;
            task.Description = Markup.Escape(u.Status is null ? title : $"{title} {u.Status}");
        }
    }

    /// <summary>Non-interactive output (CI logs): one line at every 10 % and at the end.</summary>
    sealed class LineProgress(string title) : IProgress<ProgressUpdate>
    {
        readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        long _lastDecile = -1;
        public void Report(ProgressUpdate u)
        {
            long decile = u.Total > 0 ? u.Done * 10 / u.Total : 0;
            if (decile == _lastDecile && u.Done != u.Total) return;
            _lastDecile = decile;
            double el = _clock.Elapsed.TotalSeconds;
            double eta = u.Done > 0 && u.Total > u.Done ? el / u.Done * (u.Total - u.Done) : 0;
            Console.Error.WriteLine($"{title} {u.Done}/{u.Total} elapsed {el:F0}s eta {eta:F0}s {u.Status}".TrimEnd());
        }
    }
}
