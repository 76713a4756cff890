using System.Globalization;

namespace WeakSeg.Training.Bench;

/// <summary>Resident memory of this process.</summary>
/// <param name="RssBytes">current resident set (VmRSS)</param>
/// <param name="PeakRssBytes">peak resident set since start (VmHWM)</param>
public readonly record struct MemorySnapshot(long RssBytes, long PeakRssBytes)
{
    public double RssMiB => RssBytes / 1048576.0;
    public double PeakRssMiB => PeakRssBytes / 1048576.0;
}

/// <summary>Reads RSS from /proc/self/status on Linux (falls back to the .NET working set elsewhere).</summary>
public static class ProcessMemory
{
    public static MemorySnapshot Read()
    {
        const string status = "/proc/self/status";
        if (File.Exists(status)) return ParseProcStatus(File.ReadAllText(status));
        using var p = System.Diagnostics.Process.GetCurrentProcess();
        return new MemorySnapshot(p.WorkingSet64, p.PeakWorkingSet64);
    }

    /// <summary>Parses the VmRSS and VmHWM lines ("VmRSS:\t  123456 kB") of a /proc/PID/status text into bytes.</summary>
    public static MemorySnapshot ParseProcStatus(string text)
    {
        long rss = -1, hwm = -1;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = ParseKiB(line);
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = ParseKiB(line);
        }
        if (rss < 0 || hwm < 0) throw new FormatException("VmRSS/VmHWM lines not found in the process status text.");
        return new MemorySnapshot(rss, hwm);
    }

    static long ParseKiB(string line)
    {
        var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 3 || fields[2] != "kB") throw new FormatException($"unexpected status line '{line}'.");
        return long.Parse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture) * 1024;
    }
}

/// <summary>Samples RSS at two chosen steps of a run (hook it on <see cref="Trainer.StepCompleted"/>); reports the growth
/// between them — the "memory stays flat" figure of <c>bench train</c> (default: step 200 → step 2000).</summary>
public sealed class RssGrowthProbe(long firstStep = 200, long secondStep = 2000)
{
    public long FirstStep { get; } = firstStep;
    public long SecondStep { get; } = secondStep;
    public MemorySnapshot? AtFirst { get; private set; }
    public MemorySnapshot? AtSecond { get; private set; }

    /// <summary>RSS(second) − RSS(first) in bytes, or null until both samples exist.</summary>
    public long? GrowthBytes => AtFirst is { } a && AtSecond is { } b ? b.RssBytes - a.RssBytes : null;

    public void OnStep(StepReport report) => OnStep(report.Step, ProcessMemory.Read);

    internal void OnStep(long step, Func<MemorySnapshot> read)
    {
        if (step == FirstStep) AtFirst = read();
        if (step == SecondStep) AtSecond = read();
    }
}
