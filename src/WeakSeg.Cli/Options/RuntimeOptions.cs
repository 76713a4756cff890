using System.CommandLine;
using WeakSeg.Pipelines;
using WeakSeg.Training;

namespace WeakSeg.Cli.Options;

/// <summary>Which of the runtime options a command takes.</summary>
[Flags]
internal enum RuntimePart
{
    Device = 1,
    Threads = 2,
    Seed = 4,
    Workers = 8,
}

/// <summary>
/// <c>--device</c>, <c>--threads</c>, <c>--seed</c> and <c>--workers</c>: where and how a command computes, declared once with one
/// wording. Defaults come from the library's records: <see cref="TrainerOptions"/> (device, threads, seed) and
/// <see cref="TrainRequest"/> (workers), or from the record a command passes (e.g. the demo's options).
/// </summary>
internal sealed class RuntimeOptions
{
    /// <summary>The defaults every command starts from.</summary>
    public static readonly TrainerOptions Defaults = new();

    readonly RuntimePart _parts;

    public Option<string> Device { get; }
    public Option<int> Threads { get; }
    public Option<long> Seed { get; }
    public Option<int> Workers { get; }

    /// <param name="parts">the options the command takes</param>
    /// <param name="seedUse">what the seed seeds, e.g. "model initialisation, data order and augmentation"</param>
    /// <param name="defaults">the record whose device, threads and seed are the defaults (default <see cref="Defaults"/>)</param>
    /// <param name="threadsUse">what the threads compute, when not training (e.g. "for the GEMM measurement")</param>
    public RuntimeOptions(RuntimePart parts, string seedUse = "model initialisation, data order and augmentation", TrainerOptions? defaults = null,
        string? threadsUse = null)
    {
        _parts = parts;
        var d = defaults ?? Defaults;
        Device = new("--device") { Description = "Where tensors live: cpu or cuda[:N].", DefaultValueFactory = _ => d.Device };
        Threads = new("--threads")
        {
            Description = "libtorch intra-op threads" + (threadsUse is null ? "" : " " + threadsUse) + " (0 = libtorch's default, the physical cores).",
            DefaultValueFactory = _ => d.Threads,
        };
        Seed = new("--seed") { Description = $"Seed of {seedUse} (a CPU run is repeatable).", DefaultValueFactory = _ => d.Seed };
        Workers = new("--workers") { Description = "Image-decoding threads (never changes the batches).", DefaultValueFactory = _ => TrainRequest.DefaultWorkers };
    }

    /// <summary>The options the command takes, in the order device, threads, seed, workers.</summary>
    public IEnumerable<Option> All
    {
        get
        {
            if (_parts.HasFlag(RuntimePart.Device)) yield return Device;
            if (_parts.HasFlag(RuntimePart.Threads)) yield return Threads;
            if (_parts.HasFlag(RuntimePart.Seed)) yield return Seed;
            if (_parts.HasFlag(RuntimePart.Workers)) yield return Workers;
        }
    }

    public string DeviceValue(ParseResult parse) => parse.GetValue(Device)!;
    public int ThreadsValue(ParseResult parse) => parse.GetValue(Threads);
    public long SeedValue(ParseResult parse) => parse.GetValue(Seed);
    public int WorkersValue(ParseResult parse) => parse.GetValue(Workers);

    /// <summary>The option's value when the command line gives it, else null (the command keeps the value of its recipe or --config).</summary>
    public static T? Given<T>(ParseResult parse, Option<T> option) where T : struct =>
        parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option) : null;

    /// <inheritdoc cref="Given{T}(ParseResult, Option{T})"/>
    public static string? Given(ParseResult parse, Option<string> option) =>
        parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option) : null;
}
