using System.Globalization;
using Spectre.Console;
using WeakSeg.Evaluation;

namespace WeakSeg.Cli.Output;

/// <summary>What several commands print the same way: the console, percentages, the per-class table, a loss, an evaluation.</summary>
internal static class CliConsole
{
    /// <summary>A Spectre console on the current <see cref="Console.Out"/> (follows redirection, e.g. in tests and pipes).</summary>
    public static IAnsiConsole Stdout() => AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });

    /// <summary>Percent with one decimal, "-" when undefined.</summary>
    public static string Pct(double v) => double.IsNaN(v) ? "-" : (100 * v).ToString("F1", CultureInfo.InvariantCulture);

    /// <summary>A loss for a summary line ("unknown" when nothing recorded it).</summary>
    public static string LossText(float loss) =>
        float.IsFinite(loss) ? loss.ToString("F4", CultureInfo.InvariantCulture) : "unknown (not recorded by this run's checkpoint or metrics.jsonl)";

    public static Table PerClassTable(SegmentationMetrics m, IReadOnlyList<string> names, string title)
    {
        var table = new Table().Title(Markup.Escape(title));
        table.AddColumn("class");
        foreach (var h in new[] { "IoU %", "precision %", "recall %" }) table.AddColumn(new TableColumn(h).RightAligned());
        for (int c = 0; c < m.NumClasses; c++)
            table.AddRow(Markup.Escape(c < names.Count ? names[c] : "class" + c), Pct(m.Iou[c]), Pct(m.Precision[c]), Pct(m.Recall[c]));
        table.AddRow("[bold]mean[/]", $"[bold]{Pct(m.MeanIou)}[/]", Pct(m.MeanPrecision), Pct(m.MeanRecall));
        return table;
    }

    /// <summary>The per-class table, the summary line and the optional --json file of an evaluation (`eval`, `eval-merge`).</summary>
    public static void ReportEvaluation(SegmentationEvaluation result, string splitName, string? jsonPath)
    {
        var console = Stdout();
        console.Write(PerClassTable(result.Metrics, result.ClassNames, $"{splitName}: {result.NumImages} images"));
        console.MarkupLine($"mIoU [bold]{Pct(result.Metrics.MeanIou)}[/]  pixel accuracy {Pct(result.Metrics.PixelAccuracy)}  " +
                           $"mean precision {Pct(result.Metrics.MeanPrecision)}  mean recall {Pct(result.Metrics.MeanRecall)}");
        if (jsonPath != null)
        {
            EvaluationJson.Write(jsonPath, result);
            Console.WriteLine($"wrote {jsonPath}");
        }
    }

    /// <summary>Writes <paramref name="json"/> to <paramref name="path"/> atomically (temp file, then rename); the folder must exist.</summary>
    public static void WriteJsonFile(string path, string json)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (dir is not null && !Directory.Exists(dir))
            throw WeakSegException.ForFile(path, "folder does not exist");
        WeakSeg.IO.AtomicFile.WriteAllText(full, json + Environment.NewLine, createDirectory: false);
    }
}
