using System.Collections.Concurrent;
using System.Diagnostics;

namespace WeakSeg.Training;

/// <summary>
/// Wall time spent in named parts of a training step (e.g. an EMA teacher's forward, the in-training multi-scale CAM, PAR),
/// summed over the steps while <see cref="Enabled"/>. A method marks a part with <c>using (StepTimings.Section(name)) …</c>;
/// a benchmark enables the timer, resets it after its warm-up and reads <see cref="Totals"/> at the end. Off by default:
/// a disabled section costs one flag check.
/// </summary>
public static class StepTimings
{
    static readonly ConcurrentDictionary<string, long> TicksByName = new();

    /// <summary>Whether sections are timed (process-wide).</summary>
    public static bool Enabled { get; set; }

    /// <summary>Starts timing <paramref name="name"/>; disposing the returned value adds the elapsed time (nothing when disabled).</summary>
    public static SectionTimer Section(string name) => new(Enabled ? name : null);

    /// <summary>Forgets every total.</summary>
    public static void Reset() => TicksByName.Clear();

    /// <summary>Seconds summed per section name since the last <see cref="Reset"/>.</summary>
    public static IReadOnlyDictionary<string, double> Totals =>
        TicksByName.ToDictionary(kv => kv.Key, kv => kv.Value / (double)Stopwatch.Frequency);

    /// <summary>One timed section; dispose it to record.</summary>
    public readonly struct SectionTimer(string? name) : IDisposable
    {
        readonly long _start = name is null ? 0 : Stopwatch.GetTimestamp();

        public void Dispose()
        {
            if (name is null) return;
            long elapsed = Stopwatch.GetTimestamp() - _start;
            TicksByName.AddOrUpdate(name, elapsed, (_, total) => total + elapsed);
        }
    }
}
