using System.CommandLine;
using WeakSeg.Methods;

namespace WeakSeg.Cli.Options;

/// <summary>
/// <c>--preset</c>: a named bundle of settings, one of <see cref="MethodPreset"/> (its names from <see cref="MethodRegistry.PresetName"/>),
/// default <see cref="MethodPreset.Cpu"/>. Each command says what the presets mean for it.
/// </summary>
internal static class PresetOption
{
    /// <summary>The preset names, the default (<see cref="MethodPreset.Cpu"/>) first, then the others in <see cref="MethodPreset"/> order.</summary>
    public static IReadOnlyList<string> Names =>
        Enum.GetValues<MethodPreset>().OrderBy(p => p == MethodPreset.Cpu ? 0 : 1).Select(MethodRegistry.PresetName).ToArray();

    /// <summary>The name of the default preset.</summary>
    public static string DefaultName => MethodRegistry.PresetName(MethodPreset.Cpu);

    /// <param name="description">what each preset means for this command</param>
    /// <param name="name">the option's name (<c>--preset</c>; <c>bench seg</c> calls it <c>--model</c>)</param>
    public static Option<string> Create(string description, string name = "--preset")
    {
        var option = new Option<string>(name) { Description = description, DefaultValueFactory = _ => DefaultName };
        option.AcceptOnlyFromAmong([.. Names]);
        return option;
    }

    public static MethodPreset Read(ParseResult parse, Option<string> option) => MethodRegistry.ParsePreset(parse.GetValue(option)!);
}
