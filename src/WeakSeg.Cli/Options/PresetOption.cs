using System.CommandLine;
using WeakSeg.Methods;
using WeakSeg.Pipelines;

namespace WeakSeg.Cli.Options;

/// <summary>
/// <c>--preset</c>: a named bundle of settings, a row of the preset table <see cref="Presets"/> (names and summaries from it), default
/// <see cref="MethodPreset.Cpu"/>. Each command says what the presets mean for it.
/// </summary>
internal static class PresetOption
{
    /// <summary>The preset names, the default (<see cref="MethodPreset.Cpu"/>) first, then the others in <see cref="MethodPreset"/> order.</summary>
    public static IReadOnlyList<string> Names =>
        Presets.All.OrderBy(p => p.Preset == MethodPreset.Cpu ? 0 : 1).Select(p => p.Name).ToArray();

    /// <summary>The name of the default preset.</summary>
    public static string DefaultName => Presets.Name(MethodPreset.Cpu);

    /// <param name="description">what each preset means for this command</param>
    /// <param name="name">the option's name (<c>--preset</c>; <c>bench seg</c> calls it <c>--model</c>)</param>
    public static Option<string> Create(string description, string name = "--preset")
    {
        var option = new Option<string>(name) { Description = description, DefaultValueFactory = _ => DefaultName };
        option.AcceptOnlyFromAmong([.. Names]);
        return option;
    }

    /// <summary>The <c>--preset</c> of a command that runs the whole preset (train, pipeline, compare): the help lists every row of
    /// <see cref="Presets"/> with its summary, after <paramref name="lead"/>.</summary>
    public static Option<string> CreateListed(string lead) => Create($"{lead} {Presets.Described}.");

    public static MethodPreset Read(ParseResult parse, Option<string> option) => Presets.Parse(parse.GetValue(option)!);
}
